// The conformance suite is written once against factstr::Store and linked into one test
// program per backend; each program supplies its own factory.
#pragma once

#include <factstr/factstr.hpp>
#include <string>

namespace factstr::testing {

// Name of the backend under test ("memory", "sqlite", "postgres").
const char* backend_name();

// A fresh, empty store. Every call returns a store with an empty log of its own.
Store make_store();

// A second Store object over the same storage as the last make_store() result, as another
// part of a program (or after a restart) would open it; nullopt for the memory backend.
std::optional<Store> reopen_store();

}  // namespace factstr::testing
