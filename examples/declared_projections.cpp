// Runs projections declared in a JSON file over sample facts and prints the derived tables:
// the posts-and-likes and inventory examples (projections/*.json), with no C++ per projection.
//
//   declared_projections posts|inventory [STORE_URL]      (default: memory:)
#include <factstr/factstr.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

using namespace factstr;
using namespace factstr::projections;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void print(const Table& table) {
    for (const auto& row : table.rows) {
        for (std::size_t c = 0; c < row.size(); ++c) {
            std::cout << (c ? " " : "") << table.columns[c] << "=";
            std::visit(
                [](const auto& v) {
                    using V = std::decay_t<decltype(v)>;
                    if constexpr (std::is_same_v<V, std::monostate>)
                        std::cout << "NULL";
                    else if constexpr (std::is_same_v<V, bool>)
                        std::cout << (v ? "true" : "false");
                    else
                        std::cout << v;
                },
                row[c]);
        }
        std::cout << "\n";
    }
}

}  // namespace

int main(int argc, char** argv) try {
    const std::string example = argc > 1 ? argv[1] : "posts";
    Store store = open(argc > 2 ? argv[2] : "memory:");
    std::vector<std::string> tables;
    std::string file;
    if (example == "posts") {
        file = "posts_likes.json";
        tables = {"post_stats", "posts_rows"};
        (void)store.append(
            {{"post-published", R"({"postId":"p1","title":"Hello","author":"ada"})"},
             {"post-published", R"({"postId":"p2","title":"Drafts","author":"bob"})"},
             {"post-liked", R"({"postId":"p1","by":"bob","byAuthor":false})"},
             {"post-liked", R"({"postId":"p1","by":"ada","byAuthor":true})"},
             {"post-liked", R"({"postId":"p2","by":"cy","byAuthor":false})"},
             {"post-unliked", R"({"postId":"p2","by":"cy"})"},
             {"post-deleted", R"({"postId":"p2"})"}});
    } else if (example == "inventory") {
        file = "inventory.json";
        tables = {"stock"};
        (void)store.append({{"stock-added", R"({"sku":"apple","quantity":40})"},
                            {"stock-sold", R"({"sku":"apple","quantity":15})"},
                            {"stock-returned", R"({"sku":"apple","quantity":2})"},
                            {"stock-counted", R"({"sku":"apple","soldOut":false})"},
                            {"stock-added", R"({"sku":"pear","quantity":5})"},
                            {"stock-sold", R"({"sku":"pear","quantity":5})"},
                            {"stock-counted", R"({"sku":"pear","soldOut":true})"}});
    } else {
        std::cerr << "usage: declared_projections posts|inventory [STORE_URL]\n";
        return 2;
    }
    Engine engine(store);
    for (Projection& projection :
         parse_projections(read_file(FACTSTR_EXAMPLES_DIR "/projections/" + file)))
        engine.add(std::move(projection));
    engine.start();
    engine.wait_caught_up(std::chrono::seconds(10));
    for (const std::string& table : tables) {
        std::cout << "[" << table << "]\n";
        print(engine.read(table));
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "declared_projections: " << e.what() << "\n";
    return 1;
}
