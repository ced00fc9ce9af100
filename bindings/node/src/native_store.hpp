// The native side of a store: one factstr::Store behind the thin JavaScript classes of
// index.js, which validate input, serialize payloads and queries to JSON text, and build
// the result objects.
#pragma once

#include <napi.h>

#include <cstdint>
#include <factstr/store.hpp>
#include <memory>
#include <vector>

#include "native_subscription.hpp"

namespace factstr_node {

class NativeStore : public Napi::ObjectWrap<NativeStore> {
  public:
    static Napi::Function define(Napi::Env env);

    // new NativeStore(kind, first, second, slots): kind "memory", "sqlite" (first = path),
    // "postgres" (first = database URL) or "bootstrap" (first = server URL, second = database
    // name). `slots` is a BigUint64Array(4) through which append results are returned.
    explicit NativeStore(const Napi::CallbackInfo& info);
    ~NativeStore() override;

  private:
    // append(eventType, payloadJson) or append([typesJson, payloadsJson]) (two JSON arrays,
    // one element per event): slots = [first, last, count].
    Napi::Value append(const Napi::CallbackInfo& info);
    // appendIf(events (as for append), payloadJsonOrUndefined, queryJson, expected?):
    // true = committed, slots = [first, last, count]; false = conflict,
    // slots = [hasExpected, expected, hasActual, actual].
    Napi::Value append_if(const Napi::CallbackInfo& info);
    // query(queryJson) -> [sequenceNumbers, recordsJson, lastReturned?, currentContextVersion?]
    Napi::Value query(const Napi::CallbackInfo& info);
    // streamLive(queryJson | null, dispatch) -> NativeSubscription
    Napi::Value stream_live(const Napi::CallbackInfo& info);
    // streamDurable(name, queryJson | null, dispatch) -> Promise<NativeSubscription>
    Napi::Value stream_durable(const Napi::CallbackInfo& info);
    Napi::Value head(const Napi::CallbackInfo& info);
    Napi::Value close(const Napi::CallbackInfo& info);

    factstr::Store& store(Napi::Env env);
    std::shared_ptr<DeliveryChannel> open_channel(Napi::Env env, Napi::Value dispatch);
    void close_store();

    std::unique_ptr<factstr::Store> store_;
    bool closed_ = false;
    std::vector<std::weak_ptr<DeliveryChannel>> channels_;
    Napi::Reference<Napi::BigUint64Array> slots_reference_;
    std::uint64_t* slots_ = nullptr;
};

}  // namespace factstr_node
