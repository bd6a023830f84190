#include "data.hpp"

#include "domain.hpp"

#include <evs/eventstore/repository.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace bench {

void remove_db(const fs::path& p) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(p.string() + suffix, ec);
}

void create_empty_store(const fs::path& p, evs::Durability d) {
  remove_db(p);
  evs::SqliteEventStore store({p, d});
}

evs::SqliteOptions store_options(const fs::path& p, evs::Durability d) {
  evs::SqliteOptions o;
  o.path = p;
  o.durability = d;
  return o;
}

namespace {

// Appends events 0..n-1 of `stream` from `event`, 1,000 per append.
void append_stream(evs::SqliteEventStore& store, const std::string& stream, std::size_t n, const EventMaker& event) {
  std::size_t done = 0;
  while (done < n) {
    const std::size_t k = std::min<std::size_t>(1000, n - done);
    std::vector<evs::EventData> batch;
    for (std::size_t i = 0; i < k; ++i) batch.push_back(event(stream, std::int64_t(done + i)));
    store.append(stream, evs::ExpectedVersion::exact(done), batch).value();
    done += k;
  }
}

}  // namespace

const fs::path& DataSets::log(evs::Encoding encoding) {
  return build_log(encoding == evs::Encoding::binary ? log_binary : log_json,
                   encoding == evs::Encoding::binary ? "log-binary.db" : "log-json.db",
                   [encoding](const std::string& stream, std::int64_t seq) {
                     return bench::event_data(stream, seq, encoding);
                   });
}

const fs::path& DataSets::versioned_log(bool with_old) {
  return build_log(with_old ? log_versioned_old : log_versioned_current,
                   with_old ? "log-versioned-half-v1.db" : "log-versioned-current.db",
                   [with_old](const std::string& stream, std::int64_t seq) {
                     return versioned::event_data(stream, seq, with_old && versioned::stored_old(seq));
                   });
}

const fs::path& DataSets::build_log(std::optional<fs::path>& slot, const char* name, const EventMaker& event) {
  if (slot) return *slot;
  const fs::path p = cfg.dir / name;
  if (cfg.reuse && fs::exists(p)) {
    log_events = streams() * per_stream();
    return slot.emplace(p);
  }
  remove_db(p);
  const auto t0 = SteadyClock::now();
  {
    evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
    std::mutex m;
    std::condition_variable cv;
    std::size_t inflight = 0;
    std::optional<evs::Error> error;
    constexpr std::size_t per_append = 10;
    std::vector<std::string> names;
    for (std::size_t s = 0; s < streams(); ++s) names.push_back(bench::account_name(s));
    for (std::size_t round = 0; round < per_stream() / per_append; ++round) {
      for (std::size_t s = 0; s < streams(); ++s) {
        std::vector<evs::EventData> batch;
        for (std::size_t i = 0; i < per_append; ++i)
          batch.push_back(event(names[s], std::int64_t(round * per_append + i)));
        {
          std::unique_lock lock(m);
          cv.wait(lock, [&] { return inflight < 4096; });
          ++inflight;
        }
        store.append_async(names[s], evs::ExpectedVersion::exact(round * per_append), batch,
                           [&](evs::Result<evs::AppendResult> r) {
                             std::lock_guard lock(m);
                             if (!r && !error) error = r.error();
                             --inflight;
                             cv.notify_all();
                           });
      }
    }
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return inflight == 0; });
    if (error) throw evs::Exception(*error);
  }
  log_events = streams() * per_stream();
  progress("built %s (%zu events) in %.1f s", p.filename().c_str(), log_events, seconds_since(t0));
  slot = p;
  return *slot;
}

const fs::path& DataSets::load_db() {
  if (load) return *load;
  const fs::path p = cfg.dir / "load.db";
  if (cfg.reuse && fs::exists(p)) return load.emplace(p);
  remove_db(p);
  const auto t0 = SteadyClock::now();
  {
    evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
    evs::Repository<bench::Account> repo(store);
    const auto fill = [&](const std::string& id, std::size_t n, bool snapshot) {
      append_stream(store, bench::Account::stream_id_for(id), n, [](const std::string& stream, std::int64_t seq) {
        return bench::event_data(stream, seq, evs::Encoding::binary);
      });
      if (snapshot) {
        bench::AccountState state;
        for (std::size_t seq = 0; seq < n - snapshot_lag; ++seq) {
          const bench::Movement m = bench::movement(std::int64_t(seq));
          bench::apply_to(state, m.deposit, m.cents, m.seq);
        }
        bench::Account a(id);
        a.restore(state, n - snapshot_lag);
        repo.save_snapshot(a).value();
      }
    };
    fill("l10k", load_small(), false);
    fill("s1k", snap_small(), true);
    fill("s1m", snap_large(), true);
  }
  progress("built load.db in %.1f s", seconds_since(t0));
  load = p;
  return *load;
}

const fs::path& DataSets::versioned_load_db() {
  if (load_versioned) return *load_versioned;
  const fs::path p = cfg.dir / "load-versioned.db";
  if (cfg.reuse && fs::exists(p)) return load_versioned.emplace(p);
  remove_db(p);
  const auto t0 = SteadyClock::now();
  {
    evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
    for (const bool with_old : {false, true})
      append_stream(store, versioned::Account::stream_id_for(with_old ? "half-v1" : "current"), load_small(),
                    [with_old](const std::string& stream, std::int64_t seq) {
                      return versioned::event_data(stream, seq, with_old && versioned::stored_old(seq));
                    });
  }
  progress("built load-versioned.db in %.1f s", seconds_since(t0));
  load_versioned = p;
  return *load_versioned;
}

}  // namespace bench
