// Delivering a stream's batches to a JavaScript handler, and the handle index.js keeps for
// a registered stream.
//
// Each stream has a DeliveryChannel: a thread-safe function whose JavaScript side is the
// dispatcher that index.js builds around the user's callback. The stream hands over runs of
// committed batches (StreamHandler::async_runs: what it read in one go, up to a page): a
// stream thread encodes the run and queues it without waiting; the dispatcher runs on the
// JavaScript thread, calls the callback once per batch, in order (awaiting a returned
// Promise before the next), and reports how far it got through complete(token, handled,
// reason?), which finishes the run's factstr::Completion. One hand-over between threads per
// run, not per batch. No thread is parked while a callback (or its Promise) runs.
//
// The thread-safe function is unreferenced: an idle stream does not keep the process alive
// (index.js keeps it alive while committed batches are still on their way to a callback).
#pragma once

#include <napi.h>

#include <factstr/store.hpp>
#include <memory>
#include <mutex>
#include <optional>

#include "records.hpp"

namespace factstr_node {

struct Delivery {
    EncodedRun run;
    factstr::Completion completion;
};

class DeliveryChannel;
void dispatch_delivery(Napi::Env env, Napi::Function dispatch,
                       std::weak_ptr<DeliveryChannel>* channel, Delivery* delivery);
using DeliveryFunction =
    Napi::TypedThreadSafeFunction<std::weak_ptr<DeliveryChannel>, Delivery, dispatch_delivery>;

class DeliveryChannel : public std::enable_shared_from_this<DeliveryChannel> {
  public:
    // JavaScript thread. `dispatch(sequenceNumbers, recordsJson, token)`.
    static std::shared_ptr<DeliveryChannel> open(Napi::Env env, Napi::Function dispatch);

    // The handler to register with the store: queues each batch for the dispatcher.
    factstr::StreamHandler handler();

    // JavaScript thread. No delivery is queued after this; idempotent.
    void close();

    // Any thread. False (and the delivery counts as failed) when the channel is closed.
    bool send(std::unique_ptr<Delivery> delivery);

  private:
    friend void finalize_delivery_function(Napi::Env, void*, std::weak_ptr<DeliveryChannel>*);
    void finalized();

    std::mutex mutex_;
    bool open_ = false;
    DeliveryFunction function_;
};

// complete(token, handled, reason?): reports a dispatched run's outcome (once; later calls are
// ignored): its first `handled` batches succeeded; with `reason`, the next one failed; else,
// when handled is less than the run's length, the run stopped there (unsubscribed). A token
// collected without a report counts as a failure of the whole run.
Napi::Value complete_delivery(const Napi::CallbackInfo& info);

// The JavaScript handle of one registered stream.
class NativeSubscription : public Napi::ObjectWrap<NativeSubscription> {
  public:
    static Napi::Function define(Napi::Env env);
    static Napi::Object create(Napi::Env env, factstr::Subscription subscription,
                               std::shared_ptr<DeliveryChannel> channel);

    explicit NativeSubscription(const Napi::CallbackInfo& info);

  private:
    Napi::Value unsubscribe(const Napi::CallbackInfo& info);
    Napi::Value release(const Napi::CallbackInfo& info);
    Napi::Value active(const Napi::CallbackInfo& info);
    Napi::Value position(const Napi::CallbackInfo& info);
    Napi::Value failure(const Napi::CallbackInfo& info);

    factstr::Subscription subscription_;
    std::shared_ptr<DeliveryChannel> channel_;
};

}  // namespace factstr_node
