#include "lane.hpp"

#include "exception_text.hpp"

#include <algorithm>

namespace evs::detail {

Lane::Lane(Projection& p, const ProjectionOptions& o, std::size_t i, boost::asio::io_context& io)
    : projection(p), name(p.name()), options(o), index(i), strand(boost::asio::make_strand(io)) {}

std::optional<std::string> Lane::attempt(const RecordedEvent& e, bool guarded) {
  // A node whose lease may have run out (a long batch, a pause) handles nothing more: its commit would be
  // fenced anyway, and an effect must not run twice because of it.
  if (claims() && (!epoch || std::chrono::steady_clock::now() >= lease_end)) fence_before_commit();
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
    fence_before_commit();
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
    fence_before_commit();
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
    fence_before_commit();
    db->commit();
  } else {
    ++parked_in_memory;
  }
  checkpoint = e.position;
}

bool Lane::refresh_claim() {
  if (!claims()) return false;
  const auto now = std::chrono::steady_clock::now();
  if (now < claim_due) return false;
  lease_end = now + options.lease;
  const std::optional<std::uint64_t> before = epoch;
  epoch.reset();
  held = false;
  claim_due = now + options.lease / 3;  // renewed well before it runs out; unheld, tried again then
  epoch = db->claim(name, index, options.node, options.lease);
  held = epoch.has_value();
  if (before && epoch != before) ++fenced;  // lost meanwhile (the lease ran out): counted like a rejected batch
  if (!epoch || epoch == before) return false;
  // Taken (over): the checkpoint is the one in the database, wherever the previous owner left it.
  const auto stored = db->load_checkpoint(name, index);
  checkpoint = stored ? stored->position : 0;
  return true;
}

void Lane::release_claim() noexcept {
  if (!claims() || !epoch) return;
  try {
    db->release(name, index, options.node, *epoch);
  } catch (...) {  // the lease runs out by itself
  }
  epoch.reset();
  held = false;
}

void Lane::fence_before_commit() {
  if (!claims()) return;
  const auto now = std::chrono::steady_clock::now();
  if (epoch && now < lease_end && db->fence(name, index, options.node, *epoch, options.lease)) {
    claim_due = now + options.lease / 3;
    lease_end = now + options.lease;
    return;
  }
  epoch.reset();
  held = false;
  ++fenced;
  throw Exception(errc::fenced, "projection " + name + " partition " + std::to_string(index) + ": node " +
                                    options.node + " no longer holds it (its lease ran out or another node took it "
                                    "over); the batch was rolled back");
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
