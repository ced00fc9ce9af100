#include "factstr/internal/evaluation.hpp"

#include "factstr/env.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

namespace factstr {
namespace {

// Collects the verified facts of an ascending read, source by source, into one ascending
// list without duplicates, and keeps at most `limit` of them: whole batches (a page) or
// exactly `limit` (a query). Once `limit` facts are held, the last one kept (the end of its
// batch, for pages) is the ceiling: no later candidate can be returned, so every source stops
// there.
class Collector final : public CandidateSink {
  public:
    Collector(const CompiledQuery& query, std::size_t limit, bool whole_batches)
        : query_(query), limit_(std::max<std::size_t>(limit, 1)), whole_batches_(whole_batches) {}

    void begin_source(bool, bool padded) override {
        settle();
        padded_ = padded;
        source_start_ = records_.size();
    }

    bool take(std::span<const StoredFact> block) override {
        const bool check = !query_.matches_all();
        for (const StoredFact& fact : block) {
            if (fact.sequence_number > ceiling_) return false;
            if (check && !query_.matches(fact.event_type, fact.payload, padded_)) continue;
            // Within one source, facts ascend: the source's own list reaches the limit.
            const std::size_t own = records_.size() - source_start_;
            if (own >= limit_ && source_start_ == 0 && ceiling_ == kOpen) {
                if (!whole_batches_ || fact.batch_last != batch_lasts_.back()) {
                    set_ceiling_from_last();
                    return false;
                }
            }
            records_.push_back(EventRecord{
                fact.sequence_number, Timestamp(std::chrono::microseconds(fact.occurred_at_us)),
                std::string(fact.event_type), std::string(fact.payload)});
            batch_lasts_.push_back(fact.batch_last);
        }
        return true;
    }

    std::size_t wanted() const override { return limit_; }
    bool needs_batch_ends() const override { return whole_batches_; }

    // The collected facts in ascending order, cut at the limit. `cut`: the limit left facts
    // out (everything up to ceiling() was examined).
    void finish() { settle(); }
    bool cut() const { return ceiling_ != kOpen; }
    SequenceNumber ceiling() const { return ceiling_; }
    std::vector<EventRecord>& records() { return records_; }
    const std::vector<SequenceNumber>& batch_lasts() const { return batch_lasts_; }

  private:
    static constexpr SequenceNumber kOpen = ~SequenceNumber{0};

    // Merges the last source into what was collected before it, then applies the limit.
    void settle() {
        if (source_start_ > 0 && source_start_ < records_.size()) merge();
        source_start_ = 0;
        if (records_.size() <= limit_) {
            if (records_.size() == limit_ && !whole_batches_) set_ceiling_from_last();
            return;
        }
        std::size_t keep = limit_;
        if (whole_batches_)
            while (keep < records_.size() && batch_lasts_[keep] == batch_lasts_[limit_ - 1])
                ++keep;
        records_.resize(keep);
        batch_lasts_.resize(keep);
        set_ceiling_from_last();
    }

    void set_ceiling_from_last() {
        ceiling_ = whole_batches_ ? batch_lasts_.back() : records_.back().sequence_number;
    }

    // Candidate merging, written once: sources may overlap and interleave.
    void merge() {
        std::vector<std::size_t> order(records_.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return records_[a].sequence_number < records_[b].sequence_number;
        });
        std::vector<EventRecord> records;
        std::vector<SequenceNumber> lasts;
        records.reserve(order.size());
        lasts.reserve(order.size());
        for (std::size_t i : order) {
            if (!records.empty() && records.back().sequence_number == records_[i].sequence_number)
                continue;
            records.push_back(std::move(records_[i]));
            lasts.push_back(batch_lasts_[i]);
        }
        records_ = std::move(records);
        batch_lasts_ = std::move(lasts);
    }

    const CompiledQuery& query_;
    const std::size_t limit_;
    const bool whole_batches_;
    bool padded_ = false;
    std::size_t source_start_ = 0;
    SequenceNumber ceiling_ = kOpen;
    std::vector<EventRecord> records_;
    std::vector<SequenceNumber> batch_lasts_;
};

// Finds the newest match: each source newest first, up to its first match above the best
// found so far.
class NewestMatch final : public CandidateSink {
  public:
    NewestMatch(const CompiledQuery& query, SequenceNumber at_most)
        : query_(query), at_most_(at_most) {}

    void begin_source(bool, bool padded) override { padded_ = padded; }

    bool take(std::span<const StoredFact> block) override {
        for (const StoredFact& fact : block) {
            if (fact.sequence_number <= best_) return false;
            if (fact.sequence_number > at_most_) continue;
            if (query_.matches(fact.event_type, fact.payload, padded_)) {
                best_ = fact.sequence_number;
                return false;
            }
        }
        return true;
    }

    SequenceNumber floor() const override { return best_; }
    std::optional<SequenceNumber> best() const {
        if (best_ == 0) return std::nullopt;
        return best_;
    }

  private:
    const CompiledQuery& query_;
    const SequenceNumber at_most_;
    bool padded_ = false;
    SequenceNumber best_ = 0;
};

}  // namespace

std::optional<SequenceNumber> context_version(LogView& view, const CompiledQuery& query,
                                              SequenceNumber at_most) {
    if (query.matches_all()) {
        if (at_most == 0) return std::nullopt;
        return at_most;
    }
    if (at_most == 0) return std::nullopt;
    NewestMatch newest(query, at_most);
    view.newest_first(query, at_most, newest);
    return newest.best();
}

QueryResult evaluate_query(LogView& view, const CompiledQuery& query, std::size_t limit) {
    const SequenceNumber min = query.min_sequence_number().value_or(0);
    if (limit == 0) {
        QueryResult result;
        result.current_context_version = context_version(view, query, view.head());
        return result;
    }
    Collector collector(query, limit, false);
    view.ascending(query, min, LogView::kThroughHead, collector);
    collector.finish();
    const SequenceNumber end = view.head();
    QueryResult result;
    result.event_records = std::move(collector.records());
    if (!result.event_records.empty()) {
        result.last_returned_sequence_number = result.event_records.back().sequence_number;
        // Every match above the cursor was returned, so the newest returned is the newest —
        // unless the limit left later matches out.
        result.current_context_version = collector.cut() ? context_version(view, query, end)
                                                         : result.last_returned_sequence_number;
    } else {
        result.current_context_version = context_version(view, query, std::min(min, end));
    }
    return result;
}

BatchPage read_page(LogView& view, SequenceNumber after, const CompiledQuery& filter,
                    std::size_t max_facts) {
    const SequenceNumber end = view.head();
    BatchPage page;
    page.scanned_through = std::max(after, end);
    if (after >= end) return page;
    // Bound the work of one page by a window of sequence numbers, widened to the end of the
    // batch it cuts into.
    const SequenceNumber window = filter.matches_all()
                                      ? std::max<SequenceNumber>(max_facts, 1)
                                      : std::max<SequenceNumber>(max_facts * 16, 65536);
    SequenceNumber window_end = end;
    if (end - after > window) window_end = view.batch_end_at(after + window);
    Collector collector(filter, max_facts, true);
    view.ascending(filter, after, window_end, collector);
    collector.finish();
    page.scanned_through = collector.cut() ? std::min(collector.ceiling(), window_end) : window_end;
    std::vector<EventRecord>& records = collector.records();
    const std::vector<SequenceNumber>& lasts = collector.batch_lasts();
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (page.batches.empty() || page.batches.back().last_sequence_number != lasts[i])
            page.batches.push_back(CommittedBatch{lasts[i], {}});
        page.batches.back().records.push_back(std::move(records[i]));
    }
    return page;
}

std::vector<AcceptedWrite> decide_group(LogView& view, SequenceNumber head,
                                        const std::vector<WriteRequest*>& group) {
    std::vector<AcceptedWrite> accepted;
    SequenceNumber next = head + 1;
    for (WriteRequest* request : group) {
        if (request->error) continue;
        if (request->context) {
            const CompiledQuery& context = *request->context;
            std::optional<SequenceNumber> actual;
            // Facts accepted earlier in this group are newer than any in the view.
            for (auto w = accepted.rbegin(); w != accepted.rend() && !actual; ++w) {
                const auto& events = w->request->events;
                for (std::size_t i = events.size(); i-- > 0;) {
                    if (context.matches(events[i].event_type, events[i].payload.compact)) {
                        actual = w->first_sequence_number + i;
                        break;
                    }
                }
            }
            if (!actual) actual = context_version(view, context, head);
            if (actual != request->expected) {
                request->result = ConditionalAppendConflict{request->expected, actual};
                continue;
            }
        }
        const std::size_t n = request->events.size();
        request->result = AppendResult{next, next + n - 1, n};
        accepted.push_back(AcceptedWrite{request, next});
        next += n;
    }
    return accepted;
}

std::int64_t now_micros() {
    return Env::system().now().time_since_epoch().count();
}

}  // namespace factstr
