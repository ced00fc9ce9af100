#include <factstr/factstr.hpp>

#include <iostream>

int main() {
    factstr::Store store = factstr::open("memory:");
    auto result = store.append({{"installed", R"({"ok":true})"}});
    std::cout << "appended " << result.last_sequence_number << "\n";
    return result.last_sequence_number == 1 ? 0 : 1;
}
