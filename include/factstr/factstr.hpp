// The one header a user includes.
#pragma once

#include "factstr/errors.hpp"
#include "factstr/json.hpp"
#include "factstr/options.hpp"
#include "factstr/projections.hpp"
#include "factstr/query.hpp"
#include "factstr/store.hpp"
#include "factstr/types.hpp"
