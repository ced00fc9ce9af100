// Turning library failures into JavaScript errors.
#pragma once

#include <napi.h>

#include <exception>

namespace factstr_node {

// A JavaScript Error for a failure: a factstr::Error keeps its message and gets `code` set to
// the library's code (e.g. "invalid_json", "handler_failed", "closed").
Napi::Error to_js_error(Napi::Env env, std::exception_ptr failure);

// Runs `work`, rethrowing any C++ exception as a JavaScript error (see to_js_error).
template <class Work>
auto translate_errors(Napi::Env env, Work&& work) -> decltype(work()) {
    try {
        return work();
    } catch (const Napi::Error&) {
        throw;
    } catch (...) {
        throw to_js_error(env, std::current_exception());
    }
}

}  // namespace factstr_node
