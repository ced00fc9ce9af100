#include "native_subscription.hpp"

#include <algorithm>

#include "addon_data.hpp"
#include "errors.hpp"

namespace factstr_node {
namespace {

// The outcome slot of one dispatched run, owned by its JavaScript token.
struct PendingCompletion {
    std::optional<factstr::Completion> completion;
    std::vector<factstr::SequenceNumber> ends;  // each batch's last sequence number
};

}  // namespace

void finalize_delivery_function(Napi::Env, void*, std::weak_ptr<DeliveryChannel>* channel) {
    if (auto alive = channel->lock()) alive->finalized();
    delete channel;
}

std::shared_ptr<DeliveryChannel> DeliveryChannel::open(Napi::Env env, Napi::Function dispatch) {
    auto channel = std::make_shared<DeliveryChannel>();
    channel->function_ = DeliveryFunction::New(
        env, dispatch, "factstr-stream", 0, 1, new std::weak_ptr<DeliveryChannel>(channel),
        finalize_delivery_function, static_cast<void*>(nullptr));
    channel->function_.Unref(env);
    channel->open_ = true;
    return channel;
}

factstr::StreamHandler DeliveryChannel::handler() {
    return factstr::StreamHandler::async_runs([channel = shared_from_this()](
                                                  const std::vector<factstr::CommittedBatch>& run,
                                                  factstr::Completion done) {
        channel->send(std::unique_ptr<Delivery>(new Delivery{encode_run(run), std::move(done)}));
    });
}

bool DeliveryChannel::send(std::unique_ptr<Delivery> delivery) {
    std::lock_guard lock(mutex_);
    if (!open_) return false;
    if (function_.NonBlockingCall(delivery.get()) != napi_ok) return false;
    delivery.release();  // dispatch_delivery owns it now
    return true;
}

void DeliveryChannel::close() {
    std::lock_guard lock(mutex_);
    if (!open_) return;
    open_ = false;
    function_.Release();
}

void DeliveryChannel::finalized() {
    std::lock_guard lock(mutex_);
    open_ = false;
}

void dispatch_delivery(Napi::Env env, Napi::Function dispatch, std::weak_ptr<DeliveryChannel>*,
                       Delivery* raw) {
    std::unique_ptr<Delivery> delivery(raw);
    // Without an environment (shutting down) the delivery is dropped: it counts as failed.
    if (env == nullptr || dispatch.IsEmpty()) return;
    try {
        Napi::HandleScope scope(env);
        EncodedRun& run = delivery->run;
        Napi::Value sizes = typed_array_of(env, run.sizes);
        Napi::Value numbers = typed_array_of(env, run.records.sequence_numbers);
        Napi::Value labels = typed_array_of(env, run.records.labels);
        Napi::Value json = text_to_js(env, run.records.json);
        auto token = Napi::External<PendingCompletion>::New(
            env, new PendingCompletion{std::move(delivery->completion), std::move(run.ends)},
            [](Napi::Env, PendingCompletion* done) { delete done; });
        delivery.reset();
        dispatch.Call({numbers, labels, json, sizes, token});
    } catch (const Napi::Error&) {
        // The dispatcher catches everything a callback does, so this is the environment
        // going away (a worker being terminated): the batch counts as failed, which keeps a
        // durable cursor where it was.
    }
}

Napi::Value complete_delivery(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsNumber())
        throw Napi::TypeError::New(env, "complete(token, handled, reason?)");
    auto* pending = info[0].As<Napi::External<PendingCompletion>>().Data();
    if (!pending->completion) return env.Undefined();
    factstr::Completion done = std::move(*pending->completion);
    pending->completion.reset();
    const auto& ends = pending->ends;
    const double count = info[1].As<Napi::Number>().DoubleValue();
    const std::size_t handled =
        count <= 0 ? 0 : std::min(ends.size(), static_cast<std::size_t>(count));
    const factstr::SequenceNumber handled_through = handled == 0 ? 0 : ends[handled - 1];
    if (info.Length() > 2 && info[2].IsString() && handled < ends.size()) {
        done.fail_after(handled_through, ends[handled], info[2].As<Napi::String>().Utf8Value());
    } else if (handled == ends.size()) {
        done.succeed();
    } else {
        done.succeed_through(handled_through);
    }
    return env.Undefined();
}

Napi::Function NativeSubscription::define(Napi::Env env) {
    return DefineClass(env, "NativeSubscription",
                       {
                           InstanceMethod<&NativeSubscription::unsubscribe>("unsubscribe"),
                           InstanceMethod<&NativeSubscription::release>("release"),
                           InstanceMethod<&NativeSubscription::active>("active"),
                           InstanceMethod<&NativeSubscription::position>("position"),
                           InstanceMethod<&NativeSubscription::failure>("failure"),
                       });
}

Napi::Object NativeSubscription::create(Napi::Env env, factstr::Subscription subscription,
                                        std::shared_ptr<DeliveryChannel> channel) {
    Napi::Object object = addon_data(env).subscription_constructor.New({});
    NativeSubscription* self = Unwrap(object);
    self->subscription_ = std::move(subscription);
    self->channel_ = std::move(channel);
    return object;
}

NativeSubscription::NativeSubscription(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<NativeSubscription>(info) {}

Napi::Value NativeSubscription::unsubscribe(const Napi::CallbackInfo& info) {
    subscription_.unsubscribe();
    if (channel_) channel_->close();
    return info.Env().Undefined();
}

// Lets go of the delivery channel of a stream that stops by itself (a durable stream whose
// callback failed): nothing more is delivered to it.
Napi::Value NativeSubscription::release(const Napi::CallbackInfo& info) {
    if (channel_) channel_->close();
    return info.Env().Undefined();
}

Napi::Value NativeSubscription::active(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), subscription_.active());
}

Napi::Value NativeSubscription::position(const Napi::CallbackInfo& info) {
    return Napi::BigInt::New(info.Env(), static_cast<std::uint64_t>(subscription_.position()));
}

Napi::Value NativeSubscription::failure(const Napi::CallbackInfo& info) {
    auto failure = subscription_.failure();
    if (!failure) return info.Env().Undefined();
    return Napi::String::New(info.Env(), *failure);
}

}  // namespace factstr_node
