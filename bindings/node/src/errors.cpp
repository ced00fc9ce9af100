#include "errors.hpp"

#include <factstr/errors.hpp>

namespace factstr_node {

Napi::Error to_js_error(Napi::Env env, std::exception_ptr failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const factstr::Error& e) {
        Napi::Error error = Napi::Error::New(env, e.what());
        error.Set("code", Napi::String::New(env, factstr::to_string(e.code())));
        return error;
    } catch (const std::exception& e) {
        return Napi::Error::New(env, e.what());
    } catch (...) {
        return Napi::Error::New(env, "factstr: unknown native failure");
    }
}

}  // namespace factstr_node
