// Per-environment state of the addon (one per main thread or worker).
#pragma once

#include <napi.h>

namespace factstr_node {

struct AddonData {
    Napi::FunctionReference store_constructor;
    Napi::FunctionReference subscription_constructor;
};

inline AddonData& addon_data(Napi::Env env) {
    return *env.GetInstanceData<AddonData>();
}

}  // namespace factstr_node
