// The in-memory backend: the reference implementation of the EventStore contract, and a test double.
// Nothing survives the object. All methods are serialized by one mutex.
#pragma once

#include "evs/eventstore/event_store.hpp"
#include "evs/eventstore/schema_drift.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace evs {

struct MemoryOptions {
  // An appended event whose fingerprint differs from the one recorded for its (type, version), as
  // SqliteOptions::schema_check does at append: refuse fails the append with schema_drift (nothing is
  // stored); warn stores it and passes the message to schema_warning (stderr when unset), once per store
  // and (type, version, fingerprint); off stores it silently. The record never changes.
  SchemaCheck schema_check = SchemaCheck::refuse;
  std::function<void(const std::string&)> schema_warning;
};

class MemoryEventStore final : public EventStore {
 public:
  MemoryEventStore();
  explicit MemoryEventStore(MemoryOptions options);
  ~MemoryEventStore() override;

  [[nodiscard]] Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::span<const EventData> events) override;
  void append_async(std::string_view stream_id, ExpectedVersion expected, std::span<const EventData> events,
                    AppendCallback done) override;
  [[nodiscard]] Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id,
                                                 const ReadStreamOptions& options = {}) override;
  [[nodiscard]] Result<ReadAllBatch> read_all(std::uint64_t from_position, std::size_t max_count,
                                const ReadAllFilter& filter = {}) override;
  [[nodiscard]] Result<std::uint64_t> stream_version(std::string_view stream_id) override;
  [[nodiscard]] Result<std::uint64_t> last_position() override;
  [[nodiscard]] Result<std::uint64_t> position_at(Timestamp t) override;
  std::uint64_t add_commit_listener(CommitListener listener) override;
  void remove_commit_listener(std::uint64_t id) override;
  std::uint64_t add_append_observer(AppendObserver observer) override;
  void remove_append_observer(std::uint64_t id) override;
  [[nodiscard]] Result<std::uint64_t> change_token() override;
  [[nodiscard]] Result<void> save_snapshot(const Snapshot& snapshot) override;
  [[nodiscard]] Result<std::optional<Snapshot>> load_snapshot(std::string_view stream_id,
                                                std::uint64_t max_version = end_of_stream) override;
  // Described from EventRegistry::global(). A memory store starts empty, so it has no check at open.
  [[nodiscard]] Result<std::vector<RecordedSchema>> recorded_schemas() override;

 private:
  // `warnings`: schema-check warnings to report once the lock is released.
  [[nodiscard]] Result<AppendResult> append_locked(std::string_view stream_id, ExpectedVersion expected,
                                                   std::span<const EventData> events,
                                                   std::vector<std::string>& warnings);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evs
