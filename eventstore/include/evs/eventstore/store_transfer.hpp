// Moving a whole store between backends (SQLite <-> PostgreSQL, or within one backend): what `evs copy`
// does, and what an application that outgrows SQLite runs once (docs/replay-tool.md, "copy").
//
// StoreTransfer is the bulk access to one store that the EventStore interface does not offer: counting what
// the store holds, listing every snapshot, and an *import* that writes recorded events as they are (their
// positions, ids, stream versions, recorded times and metadata) instead of appending them, which would give
// them new positions and times. copy_store() puts the two sides together.
#pragma once

#include "evs/eventstore/event_store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace evs {

// What a store holds.
struct StoreContents {
  std::uint64_t events = 0;
  std::uint64_t streams = 0;
  std::uint64_t snapshots = 0;
  std::uint64_t schemas = 0;  // recorded event schemas (event_schemas)

  bool empty() const { return events == 0 && streams == 0 && snapshots == 0 && schemas == 0; }
};

class StoreTransfer {
 public:
  virtual ~StoreTransfer() = default;

  // What the store holds now, counted in one snapshot of it. Errors: io_error, unavailable.
  [[nodiscard]] virtual Result<StoreContents> contents() = 0;

  // The stored snapshots whose stream id sorts after `after_stream` ("" : from the first), at most
  // `max_count`, in the backend's order of stream ids: page with the last stream id returned until a page
  // comes back short. Each snapshot as stored, recorded_at included. Errors: io_error, unavailable.
  [[nodiscard]] virtual Result<std::vector<Snapshot>> read_snapshots(std::string_view after_stream,
                                                                     std::size_t max_count) = 0;

  // ---- Import ----
  // Contract of the import calls: the caller makes sure nothing else writes the store while it imports
  // (appends racing an import may fail or, on PostgreSQL, take positions below imported ones). Imports
  // call no commit listeners and check no schema drift: they store what another evs store stored.
  // finish_import() must run after the last import, before the store is appended to.

  // Stores `events` in one transaction, each exactly as given: position, stream, version, event id, type,
  // schema version, encoding, recorded_at, correlation and causation ids, user metadata and payload. The
  // streams' versions and update times (the recorded_at of each stream's last event) follow.
  // Requires: positions strictly ascending, above every position in the store and below 2^63; in each
  // stream, versions that continue the stream's current version one by one; event ids not stored yet.
  // Errors (nothing of the batch is stored): invalid_argument (positions or versions out of order, naming
  // the first such event), duplicate_event or io_error (an id or a (stream, version) stored already, as the
  // backend reports it), read_only, disk_full, unavailable, io_error.
  [[nodiscard]] virtual Result<void> import_events(std::span<const RecordedEvent> events) = 0;

  // Stores schema records as given (type, version, fingerprint, members, recorded_at), in one transaction.
  // Errors: invalid_argument when the store has a record of one of these (type, version) already (nothing
  // is stored), and the storage errors of import_events.
  [[nodiscard]] virtual Result<void> import_schemas(std::span<const RecordedSchema> schemas) = 0;

  // Stores snapshots as given (recorded_at included), replacing a stream's snapshot, in one transaction.
  // Errors: invalid_argument for a snapshot of a version above its stream's (import the events first), and
  // the storage errors of import_events.
  [[nodiscard]] virtual Result<void> import_snapshots(std::span<const Snapshot> snapshots) = 0;

  // Makes the store ready for appends after an import: later appends sort after every imported position
  // (PostgreSQL raises the transaction-id offset, as at open after a restore; SQLite appends at the last
  // position + 1). On SQLite, when the imported positions have gaps or their recorded times step back (a
  // log that came from PostgreSQL), the store remembers up to which position the log was imported, so that
  // `evs check` accepts that there (docs/event-format.md, "evs_meta"); that is written by import_events.
  // Idempotent. Errors: the storage errors of import_events.
  [[nodiscard]] virtual Result<void> finish_import() = 0;
};

// The transfer of `store`, a SqliteEventStore or a PgEventStore. It works on its own connection to the same
// file or database (and schema), so `store` must stay open while it is used. A store opened read-only
// gives a transfer whose imports fail with read_only. Errors: invalid_argument for another kind of store
// (MemoryEventStore), and the errors of connecting (io_error, unavailable, read_only).
Result<std::unique_ptr<StoreTransfer>> open_transfer(EventStore& store);

// ---- copy_store ----

struct CopyProgress {
  enum class Stage : std::uint8_t { schemas, events, snapshots, done };
  Stage stage = Stage::schemas;
  std::uint64_t events = 0;        // events copied so far
  std::uint64_t total_events = 0;  // what the source held when the copy started
  std::uint64_t snapshots = 0;     // snapshots copied so far
  std::uint64_t total_snapshots = 0;
  std::uint64_t last_position = 0;  // the position of the last event copied
};

struct CopyOptions {
  // Events per read and per import transaction (and snapshots per page).
  std::size_t batch_size = 2000;
  // Called after each stage and each batch, on the calling thread.
  std::function<void(const CopyProgress&)> progress;
  // How long the copy waits, at the readable end of the source's log, for the events the source held when
  // the copy started: PostgreSQL readers see the log only below the oldest transaction still open anywhere
  // in the cluster (PgEventStore::fence_holders), so committed events can be unreadable for a moment.
  // Past it the copy fails with timed_out.
  std::chrono::milliseconds wait_for_readers{std::chrono::minutes(1)};
};

struct CopyStats {
  std::uint64_t events = 0;
  std::uint64_t streams = 0;
  std::uint64_t snapshots = 0;
  std::uint64_t schemas = 0;
  std::uint64_t last_position = 0;
};

// Copies everything `from` holds into `to`: the schema records, every event (read_all order, in batches of
// one transaction each; at least as many as `from` held when the copy started, see wait_for_readers) and
// every snapshot, all as stored, then finish_import(). `to` must be empty (no
// events, streams, snapshots or schema records): otherwise invalid_argument, and nothing is written. Events
// appended to `from` while it copies may or may not be copied: copy a store nothing writes to. After a
// copy, both stores read the same events at the same positions, and appends to `to` go after them.
// A failure midway returns its error with the message saying how far the copy got; `to` then holds the part
// copied so far (whole batches) and must be emptied before copying again.
Result<CopyStats> copy_store(EventStore& from, EventStore& to, const CopyOptions& options = {});

}  // namespace evs
