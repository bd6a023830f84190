#include "lane.hpp"

#include "exception_text.hpp"

#include <algorithm>

namespace evs::detail {

Lane::Lane(Projection& p, const ProjectionOptions& o, std::size_t i, boost::asio::io_context& io)
    : projection(p), name(p.name()), options(o), index(i), strand(boost::asio::make_strand(io)) {}

std::optional<std::string> Lane::attempt(const RecordedEvent& e, bool guarded) {
  if (kind() == ProjectionKind::effect) prune_inbox_if_due();
  guarded = guarded && kind() == ProjectionKind::sql;
  if (guarded) db->savepoint();
  try {
    projection.handle(e, session);
  } catch (...) {
    if (guarded) db->rollback_to_savepoint();
    return exception_text(std::current_exception());
  }
  if (guarded) db->release();
  if (kind() == ProjectionKind::sql) db->check_transaction();  // still inside the batch's transaction
  if (kind() == ProjectionKind::effect) {
    // The effect happened: record it in the inbox and move the checkpoint past it, together.
    db->begin();
    db->inbox_add(name, e.event_id);
    db->save_checkpoint(name, index, options.partitions, std::max(checkpoint, e.position));
    db->commit();
    checkpoint = std::max(checkpoint, e.position);
  }
  return std::nullopt;
}

bool Lane::already_done(const RecordedEvent& e) {
  return kind() == ProjectionKind::effect && db->inbox_contains(name, e.event_id);
}

void Lane::open_batch() {
  if (kind() != ProjectionKind::sql) return;
  db->begin_batch(name);
  // The stored checkpoint is the truth: a rebuild may have swapped in a newer read model meanwhile.
  if (auto stored = db->load_checkpoint(name, index)) checkpoint = stored->position;
}

void Lane::close_batch(std::uint64_t position) {
  if (position <= checkpoint && kind() != ProjectionKind::sql) return;
  if (stores_checkpoint()) {
    const bool own = !db->in_transaction();
    if (own) db->begin();
    db->save_checkpoint(name, index, options.partitions, std::max(position, checkpoint));
    db->commit();
  }
  checkpoint = std::max(position, checkpoint);
}

void Lane::abort_batch() noexcept {
  if (db) db->rollback();
}

void Lane::park(const RecordedEvent& e, const std::string& error, int attempts) {
  if (db) {
    db->begin();
    db->park(name, e, error, attempts);
    if (kind() != ProjectionKind::memory) db->save_checkpoint(name, index, options.partitions, e.position);
    db->commit();
  } else {
    ++parked_in_memory;
  }
  checkpoint = e.position;
}

void Lane::prune_inbox_if_due() noexcept {
  using namespace std::chrono;
  constexpr std::size_t chunk = 1000;  // rows per transaction: a prune never holds the write lock for long
  const milliseconds retention = options.inbox_retention;
  const auto now = steady_clock::now();
  if (!db || db->in_transaction() || retention <= milliseconds::zero() || now < next_inbox_prune) return;
  next_inbox_prune = now + std::min<milliseconds>(hours(1), retention);
  try {
    const auto before = duration_cast<microseconds>((Clock::now() - retention).time_since_epoch()).count();
    if (db->prune_inbox(name, before, chunk) == chunk) next_inbox_prune = now;  // more to delete: next event
  } catch (...) {
    db->rollback();  // tried again when due next
  }
}

}  // namespace evs::detail
