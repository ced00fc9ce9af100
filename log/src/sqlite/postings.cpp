#include "postings.hpp"

#include "statements.hpp"

namespace factstr::sqlite {
namespace {

std::size_t varint_size(std::uint64_t value) {
    std::size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        ++size;
    }
    return size;
}

void append_varint(std::string& out, std::uint64_t value) {
    while (value >= 0x80) {
        out += static_cast<char>((value & 0x7f) | 0x80);
        value >>= 7;
    }
    out += static_cast<char>(value);
}

}  // namespace

bool decode_postings(std::string_view bytes, std::vector<SequenceNumber>& out) {
    SequenceNumber previous = 0;
    std::uint64_t value = 0;
    int shift = 0;
    for (char c : bytes) {
        const auto byte = static_cast<unsigned char>(c);
        if (shift > 63) return false;
        value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
        if (byte & 0x80) {
            shift += 7;
            continue;
        }
        previous += value;
        out.push_back(previous);
        value = 0;
        shift = 0;
    }
    return shift == 0;
}

void add_postings(Connection& db, std::int64_t key, const std::vector<SequenceNumber>& sequences) {
    std::size_t next = 0;
    auto fill = [&](std::string& bytes, SequenceNumber& last, std::int64_t& entries) {
        while (next < sequences.size()) {
            const SequenceNumber delta = sequences[next] - last;
            if (delta == 0) {
                // Two fields of one fact with the same key hash (say "a":"b\u0000sc" and
                // "a\u0000sb":"c"): the fact is listed once.
                ++next;
                continue;
            }
            if (entries > 0 && bytes.size() + varint_size(delta) > kPostingBytes) break;
            append_varint(bytes, delta);
            last = sequences[next++];
            ++entries;
        }
    };
    std::string bytes;
    SequenceNumber last = 0;
    std::int64_t entries = 0;
    {
        Resetting newest(db.statement(kNewestPosting));
        newest->bind(1, key);
        if (newest->step()) {
            last = static_cast<SequenceNumber>(newest->integer(0));
            entries = newest->integer(1);
            bytes = newest->blob(2);
        }
    }
    if (entries > 0) {
        const SequenceNumber was = last;
        fill(bytes, last, entries);
        if (last != was) {
            Resetting extend(db.statement(kExtendPosting));
            extend->bind(1, key)
                .bind(2, static_cast<std::int64_t>(was))
                .bind(3, static_cast<std::int64_t>(last))
                .bind(4, entries)
                .bind_blob(5, bytes);
            extend->run();
        }
    }
    while (next < sequences.size()) {
        bytes.clear();
        last = 0;
        entries = 0;
        fill(bytes, last, entries);
        Resetting insert(db.statement(kInsertPosting));
        insert->bind(1, key)
            .bind(2, static_cast<std::int64_t>(last))
            .bind(3, entries)
            .bind_blob(4, bytes);
        insert->run();
    }
}

}  // namespace factstr::sqlite
