// Claims (ProjectionOptions::node): the census that renews this node's claims, gives up those beyond its
// fair share and takes free or expired ones (see docs/projections.md, "Several nodes").
#include "runner.hpp"

#include "exception_text.hpp"

#include <algorithm>
#include <map>

namespace evs::detail {

bool Runner::refresh_claims() {
  if (!lanes.front()->claims() || SteadyClock::now() < claims_due()) return true;
  // True when some lane was taken (over): its checkpoint was reloaded, and another node may have worked it.
  bool taken = false;
  std::size_t held = 0;
  const auto refresh = [&](Lane& lane) {
    taken = lane.refresh_claim() || taken;
    held += lane.owned() ? 1 : 0;
  };
  try {
    ClaimCensus read = lanes.front()->db->census(name, options.node, options.lease);
    // Partitions beyond the configured count (left by a rebuild to fewer partitions) are nobody's work.
    std::erase_if(read.claims, [&](const PartitionClaim& c) { return c.partition >= lanes.size(); });
    for (auto& lane : lanes)
      if (lane->owned()) refresh(*lane);
    const std::size_t share = fair_share(read, options.node, lanes.size());
    for (auto it = lanes.rbegin(); it != lanes.rend() && held > share; ++it)
      if ((*it)->owned()) {
        (*it)->release_claim();  // between batches: the next owner starts from its stored checkpoint
        --held;
      }
    for (auto& lane : lanes) {
      if (lane->owned()) continue;
      if (held < share)
        refresh(*lane);
      else
        lane->claim_due = SteadyClock::now() + options.lease / 3;  // looked at again at the next census
    }
    MutexLock lock(mutex);
    census = std::move(read);
  } catch (...) {
    record_error(exception_text(std::current_exception()));
    return false;
  }
  if (taken) {
    projection.on_partitions_taken();
    const std::uint64_t from = min_checkpoint();
    MutexLock lock(mutex);
    position = std::min(position, from);
  }
  return true;
}

std::size_t fair_share(const ClaimCensus& census, const std::string& node, std::size_t partitions) {
  const std::size_t nodes = std::max<std::size_t>(1, census.nodes.size());
  const std::size_t floor = partitions / nodes, extra = partitions % nodes;
  // The nodes other than this one holding more than the floor take up the extra partitions first.
  std::map<std::string, std::size_t> holding;
  for (const auto& c : census.claims)
    if (!c.owner.empty() && c.owner != node && c.lease_until.time_since_epoch().count() >= census.now_us)
      ++holding[c.owner];
  std::size_t above = 0;
  for (const auto& [owner, count] : holding)
    if (count > floor && std::find(census.nodes.begin(), census.nodes.end(), owner) != census.nodes.end()) ++above;
  return floor + (above < extra ? 1 : 0);
}

SteadyClock::time_point Runner::claims_due() const {
  auto due = SteadyClock::time_point::max();
  for (const auto& lane : lanes)
    if (lane->claims()) due = std::min(due, lane->claim_due);
  return due;
}

}  // namespace evs::detail
