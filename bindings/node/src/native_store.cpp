#include "native_store.hpp"

#include <simdjson.h>

#include <factstr/json.hpp>
#include <factstr/query.hpp>
#include <mutex>
#include <string>
#include <utility>

#include "addon_data.hpp"
#include "errors.hpp"
#include "records.hpp"

namespace factstr_node {
namespace {

std::string string_argument(const Napi::CallbackInfo& info, std::size_t index, const char* what) {
    if (info.Length() <= index || !info[index].IsString())
        throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
    return info[index].As<Napi::String>().Utf8Value();
}

// JSON text from JavaScript as UTF-8 in a std::string with factstr::json::kParsePadding
// spare bytes of capacity, so that it is parsed in place (by the store, or by simdjson here).
// The UTF-16 length bounds the UTF-8 length (at most 3 bytes per unit), so a short text is
// converted in one pass, without V8 measuring it first.
std::string padded_argument(Napi::Env env, Napi::Value value, const char* what) {
    if (!value.IsString()) throw Napi::TypeError::New(env, std::string(what) + " must be a string");
    std::size_t units = 0;
    napi_get_value_string_utf16(env, value, nullptr, 0, &units);
    std::size_t bound = units * 3;
    if (bound > (std::size_t{1} << 16)) {
        // Long text: measured first, so the buffer is not three times its size.
        napi_get_value_string_utf8(env, value, nullptr, 0, &bound);
    }
    std::string text;
    text.resize(bound + factstr::json::kParsePadding);
    std::size_t written = 0;
    // napi writes a terminating NUL: room for it is inside the padding.
    napi_get_value_string_utf8(env, value, text.data(), bound + 1, &written);
    text.resize(written);
    return text;
}

// An event type: short, so converted in one pass through a stack buffer (V8 measuring a
// string first is a second pass over it). A longer one takes the measured way.
std::string type_argument(Napi::Env env, Napi::Value value) {
    if (!value.IsString()) throw Napi::TypeError::New(env, "event_type must be a string");
    char buffer[256];
    std::size_t written = 0;
    napi_get_value_string_utf8(env, value, buffer, sizeof buffer, &written);
    // Whole characters are written: with room left for the longest (4 bytes), nothing was cut.
    if (written + 4 < sizeof buffer - 1) return std::string(buffer, written);
    return value.As<Napi::String>().Utf8Value();
}

// Several events: their types and payloads as two JSON arrays (JSON.stringify of each), split
// here with simdjson's On-Demand parser. Each payload is taken as its JSON text; the store
// validates it like any other.
std::vector<factstr::NewEvent> events_from_arrays(Napi::Env env, Napi::Value types_json,
                                                  Napi::Value payloads_json) {
    using namespace simdjson;
    thread_local ondemand::parser parser;
    auto refuse = [&](const std::string& what) {
        return Napi::TypeError::New(env, "events: " + what);
    };
    std::vector<factstr::NewEvent> events;
    {
        const std::string types = padded_argument(env, types_json, "event types");
        ondemand::document document;
        ondemand::array array;
        if (parser.iterate(padded_string_view(types.data(), types.size(), types.capacity()))
                .get(document) ||
            document.get_array().get(array))
            throw refuse("the event types are not a JSON array");
        for (auto item : array) {
            std::string_view type;
            if (item.get_string().get(type)) throw refuse("an event type is not a string");
            events.push_back({std::string(type), std::string()});
        }
    }
    const std::string payloads = padded_argument(env, payloads_json, "payloads");
    const std::vector<std::string_view> texts = translate_errors(
        env, [&] { return factstr::json::item_texts(payloads, true, "the payloads"); });
    if (texts.size() != events.size())
        throw refuse(std::to_string(texts.size()) + " payloads for " +
                     std::to_string(events.size()) + " event types");
    for (std::size_t i = 0; i < texts.size(); ++i) {
        std::string& payload = events[i].payload;
        payload.reserve(texts[i].size() + factstr::json::kParsePadding);  // parsed in place
        payload.assign(texts[i]);
    }
    return events;
}

// The events of append/appendIf: (type, payloadJson) for one event, or
// ([typesJson, payloadsJson]) for several (see events_from_arrays).
std::vector<factstr::NewEvent> events_argument(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<factstr::NewEvent> events;
    if (info.Length() > 0 && info[0].IsString()) {
        events.push_back(
            {type_argument(env, info[0]),
             padded_argument(env, info.Length() > 1 ? info[1] : env.Undefined(), "payload")});
        return events;
    }
    if (info.Length() == 0 || !info[0].IsArray() || info[0].As<Napi::Array>().Length() != 2)
        throw Napi::TypeError::New(env, "events must be [typesJson, payloadsJson]");
    auto pair = info[0].As<Napi::Array>();
    return events_from_arrays(env, pair.Get(0u), pair.Get(1u));
}

std::optional<factstr::EventQuery> query_argument(const Napi::CallbackInfo& info,
                                                  std::size_t index) {
    if (info.Length() <= index || info[index].IsNull() || info[index].IsUndefined())
        return std::nullopt;
    return factstr::parse_event_query(string_argument(info, index, "query"));
}

Napi::Value optional_bigint(Napi::Env env, const std::optional<factstr::SequenceNumber>& value) {
    if (!value) return env.Undefined();
    return Napi::BigInt::New(env, static_cast<std::uint64_t>(*value));
}

// Result of a durable registration, handed from a stream thread to the JavaScript thread.
struct Registration {
    factstr::Subscription subscription;
    std::exception_ptr failure;
};

struct SettleLiveness {
    std::mutex mutex;
    bool alive = true;
};

struct RegistrationContext {
    Napi::Promise::Deferred deferred;
    std::shared_ptr<DeliveryChannel> channel;
    Napi::ObjectReference store;  // the store stays alive until the registration settles
};

void settle_registration(Napi::Env env, Napi::Function, RegistrationContext* context,
                         Registration* raw) {
    std::unique_ptr<Registration> registration(raw);
    if (env == nullptr) {
        context->channel->close();
        return;
    }
    try {
        Napi::HandleScope scope(env);
        if (registration->failure) {
            context->channel->close();
            context->deferred.Reject(to_js_error(env, registration->failure).Value());
            return;
        }
        context->deferred.Resolve(NativeSubscription::create(
            env, std::move(registration->subscription), context->channel));
    } catch (const Napi::Error&) {
        // The environment is going away (a worker being terminated): nobody awaits the
        // Promise any more.
        context->channel->close();
    }
}

using RegistrationFunction =
    Napi::TypedThreadSafeFunction<RegistrationContext, Registration, settle_registration>;

}  // namespace

Napi::Function NativeStore::define(Napi::Env env) {
    return DefineClass(env, "NativeStore",
                       {
                           InstanceMethod<&NativeStore::append>("append"),
                           InstanceMethod<&NativeStore::append_if>("appendIf"),
                           InstanceMethod<&NativeStore::query>("query"),
                           InstanceMethod<&NativeStore::stream_live>("streamLive"),
                           InstanceMethod<&NativeStore::stream_durable>("streamDurable"),
                           InstanceMethod<&NativeStore::head>("head"),
                           InstanceMethod<&NativeStore::close>("close"),
                       });
}

NativeStore::NativeStore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeStore>(info) {
    Napi::Env env = info.Env();
    const std::string kind = string_argument(info, 0, "store kind");
    if (info.Length() < 4 || !info[3].IsTypedArray() ||
        info[3].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array ||
        info[3].As<Napi::TypedArray>().ElementLength() < 4)
        throw Napi::TypeError::New(env, "NativeStore needs a BigUint64Array(4) for results");
    auto slots = info[3].As<Napi::BigUint64Array>();
    slots_reference_ = Napi::Persistent(slots);
    slots_ = slots.Data();
    store_ = translate_errors(env, [&] {
        if (kind == "memory") return std::make_unique<factstr::Store>(factstr::memory_store());
        if (kind == "sqlite")
            return std::make_unique<factstr::Store>(
                factstr::sqlite_store(string_argument(info, 1, "path")));
        if (kind == "postgres")
            return std::make_unique<factstr::Store>(
                factstr::open(string_argument(info, 1, "databaseUrl")));
        if (kind == "bootstrap")
            return std::make_unique<factstr::Store>(factstr::bootstrap(
                string_argument(info, 1, "serverUrl"), string_argument(info, 2, "databaseName")));
        throw Napi::TypeError::New(env, "unknown store kind '" + kind + "'");
    });
}

NativeStore::~NativeStore() {
    close_store();
}

factstr::Store& NativeStore::store(Napi::Env env) {
    if (closed_) {
        Napi::Error error = Napi::Error::New(env, "the store is closed");
        error.Set("code", Napi::String::New(env, "closed"));
        throw error;
    }
    return *store_;
}

void NativeStore::close_store() {
    if (closed_ || !store_) return;
    closed_ = true;
    // Stops every stream first (no handler runs after this), then lets go of the channels.
    try {
        store_->close();
    } catch (...) {
        // Closing releases what it can; a failure here leaves nothing more to do.
    }
    for (auto& weak : channels_)
        if (auto channel = weak.lock()) channel->close();
    channels_.clear();
}

Napi::Value NativeStore::append(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    factstr::Store& target = store(env);
    std::vector<factstr::NewEvent> events = events_argument(info);
    factstr::AppendResult result =
        translate_errors(env, [&] { return target.append(std::move(events)); });
    slots_[0] = result.first_sequence_number;
    slots_[1] = result.last_sequence_number;
    slots_[2] = result.committed_count;
    return env.Undefined();
}

Napi::Value NativeStore::append_if(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    factstr::Store& target = store(env);
    std::vector<factstr::NewEvent> events = events_argument(info);
    std::optional<factstr::SequenceNumber> expected;
    if (info.Length() > 3 && info[3].IsBigInt()) {
        bool lossless = false;
        expected = info[3].As<Napi::BigInt>().Uint64Value(&lossless);
        if (!lossless)
            throw Napi::RangeError::New(env, "expectedContextVersion must fit in 64 bits");
    }
    factstr::AppendIfResult outcome = translate_errors(env, [&] {
        factstr::EventQuery context = query_argument(info, 2).value_or(factstr::EventQuery{});
        return target.append_if(std::move(events), context, expected);
    });
    if (const auto* committed = outcome.append_result()) {
        slots_[0] = committed->first_sequence_number;
        slots_[1] = committed->last_sequence_number;
        slots_[2] = committed->committed_count;
        return Napi::Boolean::New(env, true);
    }
    const auto* conflict = outcome.conflict();
    slots_[0] = conflict->expected_context_version.has_value();
    slots_[1] = conflict->expected_context_version.value_or(0);
    slots_[2] = conflict->actual_context_version.has_value();
    slots_[3] = conflict->actual_context_version.value_or(0);
    return Napi::Boolean::New(env, false);
}

Napi::Value NativeStore::query(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    factstr::Store& target = store(env);
    factstr::QueryResult result = translate_errors(
        env, [&] { return target.query(query_argument(info, 0).value_or(factstr::EventQuery{})); });
    EncodedRecords encoded = encode_records(result.event_records);
    Napi::Array out = Napi::Array::New(env, 5);
    out.Set(0u, typed_array_of(env, encoded.sequence_numbers));
    out.Set(1u, typed_array_of(env, encoded.labels));
    out.Set(2u, text_to_js(env, encoded.json));
    out.Set(3u, optional_bigint(env, result.last_returned_sequence_number));
    out.Set(4u, optional_bigint(env, result.current_context_version));
    return out;
}

std::shared_ptr<DeliveryChannel> NativeStore::open_channel(Napi::Env env, Napi::Value dispatch) {
    if (!dispatch.IsFunction())
        throw Napi::TypeError::New(env, "the stream handler must be a function");
    std::erase_if(channels_, [](const auto& weak) { return weak.expired(); });
    auto channel = DeliveryChannel::open(env, dispatch.As<Napi::Function>());
    channels_.push_back(channel);
    return channel;
}

Napi::Value NativeStore::stream_live(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    factstr::Store& target = store(env);
    std::optional<factstr::EventQuery> query =
        translate_errors(env, [&] { return query_argument(info, 0); });
    auto channel = open_channel(env, info.Length() > 1 ? info[1] : env.Undefined());
    try {
        factstr::Subscription subscription = query ? target.stream_to(*query, channel->handler())
                                                   : target.stream_all(channel->handler());
        return NativeSubscription::create(env, std::move(subscription), channel);
    } catch (...) {
        channel->close();
        throw to_js_error(env, std::current_exception());
    }
}

Napi::Value NativeStore::stream_durable(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    factstr::Store& target = store(env);
    const std::string name = string_argument(info, 0, "durable stream name");
    std::optional<factstr::EventQuery> query =
        translate_errors(env, [&] { return query_argument(info, 1); });
    auto channel = open_channel(env, info.Length() > 2 ? info[2] : env.Undefined());

    auto deferred = Napi::Promise::Deferred::New(env);
    Napi::Promise promise = deferred.Promise();
    auto* context = new RegistrationContext{deferred, channel, Napi::Persistent(Value())};
    // Whether the thread-safe function still exists. When the environment is torn down (a
    // worker thread terminated, the process exiting), Node finalizes it, possibly before the
    // store closes and reports the unfinished registration: that report must not touch it.
    auto alive = std::make_shared<SettleLiveness>();
    // Referenced (unlike the delivery channel): the process waits for the registration.
    auto settle = RegistrationFunction::New(
        env, "factstr-durable-registration", 0, 1, context,
        [alive](Napi::Env, void*, RegistrationContext* done) {
            {
                std::lock_guard lock(alive->mutex);
                alive->alive = false;
            }
            delete done;
        },
        static_cast<void*>(nullptr));
    try {
        target.stream_to_durable_async(
            factstr::DurableStream{name}, std::move(query), channel->handler(),
            [settle, alive](factstr::Subscription subscription, std::exception_ptr failure) {
                std::lock_guard lock(alive->mutex);
                if (!alive->alive) return;  // the environment is gone; nobody awaits this
                auto* registration = new Registration{std::move(subscription), failure};
                if (settle.NonBlockingCall(registration) != napi_ok) delete registration;
                settle.Release();
            });
    } catch (...) {
        channel->close();
        deferred.Reject(to_js_error(env, std::current_exception()).Value());
        settle.Release();
    }
    return promise;
}

Napi::Value NativeStore::head(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    factstr::Store& target = store(env);
    return Napi::BigInt::New(
        env, static_cast<std::uint64_t>(translate_errors(env, [&] { return target.head(); })));
}

Napi::Value NativeStore::close(const Napi::CallbackInfo& info) {
    close_store();
    return info.Env().Undefined();
}

}  // namespace factstr_node
