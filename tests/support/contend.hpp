// Shared by the multi-process test workers (tests/sqlite/worker.cpp,
// tests/postgres/worker.cpp): the account context they contend on, and the one-line report
// of each append_if outcome that the parent test checks against the final log.
#pragma once

#include <factstr/factstr.hpp>

#include <iostream>
#include <optional>
#include <string>

namespace factstr::testing {

inline EventQuery account_query(const std::string& account) {
    return EventQuery{{{EventFilter{std::nullopt, {{R"({"account":")" + account + R"("})"}}}}},
                      std::nullopt};
}

inline std::string version_text(std::optional<SequenceNumber> version) {
    return version ? std::to_string(*version) : "none";
}

// "ok FIRST LAST ACCOUNT EXPECTED" or "conflict ACCOUNT EXPECTED ACTUAL".
inline void report_outcome(const AppendIfResult& outcome, const std::string& account,
                           std::optional<SequenceNumber> expected) {
    if (const auto* committed = outcome.append_result())
        std::cout << "ok " << committed->first_sequence_number << " "
                  << committed->last_sequence_number << " " << account << " "
                  << version_text(expected) << "\n";
    else
        std::cout << "conflict " << account << " "
                  << version_text(outcome.conflict()->expected_context_version) << " "
                  << version_text(outcome.conflict()->actual_context_version) << "\n";
}

}  // namespace factstr::testing
