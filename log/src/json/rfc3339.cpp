// RFC 3339 timestamps: UTC with microseconds written, any offset read.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

#include "factstr/errors.hpp"
#include "factstr/json.hpp"

namespace factstr::json {

void append_rfc3339(std::string& out, Timestamp at) {
    using namespace std::chrono;
    const auto micros = at.time_since_epoch().count();
    const auto day = floor<days>(sys_time<microseconds>(microseconds(micros)));
    const year_month_day date{day};
    const int year = static_cast<int>(date.year());
    const auto in_day = micros - duration_cast<microseconds>(day.time_since_epoch()).count();
    if (year < 0 || year > 9999) {
        // Outside four-digit years: the C library's spelling (a sign or a fifth digit).
        std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
        long fraction = static_cast<long>(micros % 1000000);
        if (fraction < 0) {
            fraction += 1000000;
            --seconds;
        }
        std::tm tm{};
        gmtime_r(&seconds, &tm);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction);
        out += buf;
        return;
    }
    char text[28] = "0000-00-00T00:00:00.000000Z";
    auto put = [&](int at, int width, long long value) {
        for (int i = at + width - 1; i >= at; --i) {
            text[i] = static_cast<char>('0' + value % 10);
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, static_cast<unsigned>(date.month()));
    put(8, 2, static_cast<unsigned>(date.day()));
    const long long seconds = in_day / 1000000;
    put(11, 2, seconds / 3600);
    put(14, 2, seconds / 60 % 60);
    put(17, 2, seconds % 60);
    put(20, 6, in_day % 1000000);
    out.append(text, 27);
}

std::string format_rfc3339(Timestamp at) {
    std::string out;
    append_rfc3339(out, at);
    return out;
}

Timestamp parse_rfc3339(std::string_view text) {
    auto fail = [&]() -> Timestamp {
        throw InvalidInput(ErrorCode::invalid_argument,
                           "not an RFC 3339 timestamp: '" + std::string(text) + "'");
    };
    auto digits = [&](std::size_t at, std::size_t count, int& out) {
        if (at + count > text.size()) return false;
        out = 0;
        for (std::size_t i = at; i < at + count; ++i) {
            if (text[i] < '0' || text[i] > '9') return false;
            out = out * 10 + (text[i] - '0');
        }
        return true;
    };
    int year, month, day, hour, minute, second;
    if (!digits(0, 4, year) || text.size() < 19 || text[4] != '-' || !digits(5, 2, month) ||
        text[7] != '-' || !digits(8, 2, day) ||
        (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !digits(11, 2, hour) ||
        text[13] != ':' || !digits(14, 2, minute) || text[16] != ':' || !digits(17, 2, second))
        return fail();
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return fail();
    std::size_t at = 19;
    long micros = 0;
    if (at < text.size() && text[at] == '.') {
        ++at;
        int count = 0;
        while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
            if (count < 6) micros = micros * 10 + (text[at] - '0');
            ++count;
            ++at;
        }
        if (count == 0) return fail();
        for (int i = count; i < 6; ++i)
            micros *= 10;
    }
    long offset_seconds = 0;
    if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
        ++at;
    } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
        int oh, om;
        if (!digits(at + 1, 2, oh) || at + 3 >= text.size() || text[at + 3] != ':' ||
            !digits(at + 4, 2, om))
            return fail();
        offset_seconds = (oh * 3600L + om * 60L) * (text[at] == '-' ? -1 : 1);
        at += 6;
    } else {
        return fail();
    }
    if (at != text.size()) return fail();
    using namespace std::chrono;
    auto date = year_month_day{std::chrono::year(year), std::chrono::month(unsigned(month)),
                               std::chrono::day(unsigned(day))};
    if (!date.ok()) return fail();
    auto t = sys_days(date) + hours(hour) + minutes(minute) + seconds(second) -
             std::chrono::seconds(offset_seconds);
    return time_point_cast<microseconds>(t) + microseconds(micros);
}

}  // namespace factstr::json
