// Module entry: the classes and functions index.js builds the public API from.
#include <napi.h>

#include "addon_data.hpp"
#include "native_store.hpp"
#include "native_subscription.hpp"

namespace factstr_node {
namespace {

Napi::Object init(Napi::Env env, Napi::Object exports) {
    auto* data = new AddonData;
    Napi::Function store = NativeStore::define(env);
    Napi::Function subscription = NativeSubscription::define(env);
    data->store_constructor = Napi::Persistent(store);
    data->subscription_constructor = Napi::Persistent(subscription);
    env.SetInstanceData(data);
    exports.Set("NativeStore", store);
    exports.Set("complete", Napi::Function::New<complete_delivery>(env, "complete"));
    return exports;
}

}  // namespace
}  // namespace factstr_node

static Napi::Object init_factstr(Napi::Env env, Napi::Object exports) {
    return factstr_node::init(env, exports);
}

NODE_API_MODULE(factstr, init_factstr)
