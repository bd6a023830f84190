// Comparing two whole stores field by field (what a copy must preserve): every event of the log with its
// whole envelope, every stream's version, every snapshot and every schema record.
#pragma once

#include "result_printing.hpp"

#include <evs/eventstore/store_transfer.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <string>
#include <vector>

namespace evs::test {

// Waits (up to 10 s) until the store's readable head reaches `position`: on PostgreSQL, readers see the log
// only below the oldest transaction still running anywhere in the cluster (another test's, too).
inline void wait_for_head(EventStore& store, std::uint64_t position) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store.last_position().value() < position && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(store.last_position().value() >= position);
}

inline std::vector<RecordedEvent> whole_log(EventStore& store) {
  std::vector<RecordedEvent> out;
  for (std::uint64_t next = 1;;) {
    auto batch = store.read_all(next, 333);
    REQUIRE(batch);
    out.insert(out.end(), batch->events.begin(), batch->events.end());
    if (batch->events.empty() || batch->next_position == next) break;
    next = batch->next_position;
  }
  return out;
}

inline std::vector<Snapshot> all_snapshots(EventStore& store) {
  auto transfer = open_transfer(store);
  REQUIRE(transfer);
  std::vector<Snapshot> out;
  for (std::string after;;) {
    auto page = (*transfer)->read_snapshots(after, 2);
    REQUIRE(page);
    out.insert(out.end(), page->begin(), page->end());
    if (page->size() < 2) break;
    after = page->back().stream_id;
  }
  // Each backend pages in its own order of stream ids (PostgreSQL: the database's collation).
  std::sort(out.begin(), out.end(), [](const Snapshot& x, const Snapshot& y) { return x.stream_id < y.stream_id; });
  return out;
}

inline void check_same_event(const RecordedEvent& a, const RecordedEvent& b) {
  CAPTURE(a.position);
  CHECK(a.position == b.position);
  CHECK(a.stream_id == b.stream_id);
  CHECK(a.version == b.version);
  CHECK(a.event_id == b.event_id);
  CHECK(a.type == b.type);
  CHECK(a.schema_version == b.schema_version);
  CHECK(a.encoding == b.encoding);
  CHECK(a.recorded_at == b.recorded_at);
  CHECK(a.payload == b.payload);
  CHECK(a.metadata == b.metadata);
}

inline void check_same_snapshot(const Snapshot& a, const Snapshot& b) {
  CAPTURE(a.stream_id);
  CHECK(a.stream_id == b.stream_id);
  CHECK(a.version == b.version);
  CHECK(a.state_type == b.state_type);
  CHECK(a.fingerprint == b.fingerprint);
  CHECK(a.encoding == b.encoding);
  CHECK(a.payload == b.payload);
  CHECK(a.recorded_at == b.recorded_at);
  CHECK(a.snapshot_version == b.snapshot_version);
}

// Checks that `copy` holds exactly what `original` holds; returns the number of events compared.
// Waits (up to 10 s) until the store's readers see every event it holds (see wait_for_head).
inline void wait_until_readable(EventStore& store) {
  auto transfer = open_transfer(store);
  REQUIRE(transfer);
  const std::uint64_t held = (*transfer)->contents().value().events;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (whole_log(store).size() < held && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(whole_log(store).size() == held);
}

inline std::size_t check_same_store(EventStore& original, EventStore& copy) {
  wait_until_readable(original);
  wait_until_readable(copy);
  const auto a = whole_log(original), b = whole_log(copy);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    check_same_event(a[i], b[i]);
    CHECK(original.stream_version(a[i].stream_id).value() == copy.stream_version(a[i].stream_id).value());
  }
  const auto sa = all_snapshots(original), sb = all_snapshots(copy);
  REQUIRE(sa.size() == sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) check_same_snapshot(sa[i], sb[i]);
  const auto ra = original.recorded_schemas(), rb = copy.recorded_schemas();
  REQUIRE(ra);
  REQUIRE(rb);
  CHECK(*ra == *rb);
  CHECK(original.last_position().value() == copy.last_position().value());
  return a.size();
}

}  // namespace evs::test
