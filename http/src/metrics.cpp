#include "metrics.hpp"

#include "site.hpp"

#include "evs/core/event.hpp"
#include "evs/projections/saga_instance.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>

namespace evs::http {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

struct Metrics::Families {
  explicit Families(prometheus::Registry& r)
      : appends(prometheus::BuildCounter()
                    .Name("evs_appends_total")
                    .Help("Appends answered by the store (one append call, any number of events), failed ones included")
                    .Register(r)
                    .Add({})),
        append_failures(prometheus::BuildCounter()
                            .Name("evs_append_failures_total")
                            .Help("Appends answered with an error (conflict, invalid, storage)")
                            .Register(r)
                            .Add({})),
        events(prometheus::BuildCounter().Name("evs_events_appended_total").Help("Events stored by appends").Register(r).Add({})),
        latency(prometheus::BuildHistogram()
                    .Name("evs_append_latency_seconds")
                    .Help("Time from an append call to its durable outcome")
                    .Register(r)
                    .Add({}, Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                         0.05, 0.1, 0.25, 0.5, 1, 2.5})),
        group(prometheus::BuildHistogram()
                  .Name("evs_commit_group_appends")
                  .Help("Appends per commit (group commit size)")
                  .Register(r)
                  .Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512})),
        head(prometheus::BuildGauge().Name("evs_store_head_position").Help("The store's last global position").Register(r).Add({})),
        position(prometheus::BuildGauge()
                     .Name("evs_projection_position")
                     .Help("Every event at or before it has been processed by the projection")
                     .Register(r)),
        lag_events(prometheus::BuildGauge()
                       .Name("evs_projection_lag_events")
                       .Help("Events between the projection's position and the head")
                       .Register(r)),
        lag_seconds(prometheus::BuildGauge()
                        .Name("evs_projection_lag_seconds")
                        .Help("Age of the oldest event the projection has not processed (0 when caught up)")
                        .Register(r)),
        state(prometheus::BuildGauge()
                  .Name("evs_projection_state")
                  .Help("1 for the projection's current state, 0 for the others")
                  .Register(r)),
        processed(prometheus::BuildCounter()
                      .Name("evs_projection_events_processed_total")
                      .Help("Events handled by the projection in this process")
                      .Register(r)),
        errors(prometheus::BuildCounter()
                   .Name("evs_projection_errors_total")
                   .Help("Handler and storage errors of the projection in this process (each failed attempt)")
                   .Register(r)),
        rate(prometheus::BuildGauge()
                 .Name("evs_projection_events_per_second")
                 .Help("The projection's recent processing rate")
                 .Register(r)),
        dead_letters(prometheus::BuildGauge()
                         .Name("evs_projection_dead_letters")
                         .Help("Events parked by the projection and waiting for an operator")
                         .Register(r)),
        retry_queued(prometheus::BuildGauge()
                         .Name("evs_projection_dead_letters_retry_queued")
                         .Help("Dead letters queued for re-delivery")
                         .Register(r)),
        checkpoint(prometheus::BuildGauge()
                       .Name("evs_projection_partition_checkpoint")
                       .Help("The stored checkpoint of one partition")
                       .Register(r)),
        partitions_held(prometheus::BuildGauge()
                            .Name("evs_projection_partitions_held")
                            .Help("Partitions this node holds (claims; all of them without claims)")
                            .Register(r)),
        claim_epoch(prometheus::BuildGauge()
                        .Name("evs_projection_claim_epoch")
                        .Help("The epoch of a partition's claim (grows with every change of owner)")
                        .Register(r)),
        claim_held(prometheus::BuildGauge()
                       .Name("evs_projection_claim_held")
                       .Help("1 when a node holds the partition's claim, 0 when it is free, as last read")
                       .Register(r)),
        fenced(prometheus::BuildCounter()
                   .Name("evs_projection_fenced_total")
                   .Help("Commits or renewals this node found fenced (its claim gone)")
                   .Register(r)),
        sagas(prometheus::BuildGauge()
                  .Name("evs_saga_instances")
                  .Help("Instances of a process manager by state (running, completed, compensated)")
                  .Register(r)),
        scrape_errors(prometheus::BuildCounter()
                          .Name("evs_metrics_scrape_errors_total")
                          .Help("Scrapes that could not read some figures (those keep their last values)")
                          .Register(r)
                          .Add({})) {}

  Counter& appends;
  Counter& append_failures;
  Counter& events;
  Histogram& latency;
  Histogram& group;
  Gauge& head;
  Family<Gauge>& position;
  Family<Gauge>& lag_events;
  Family<Gauge>& lag_seconds;
  Family<Gauge>& state;
  Family<Counter>& processed;
  Family<Counter>& errors;
  Family<Gauge>& rate;
  Family<Gauge>& dead_letters;
  Family<Gauge>& retry_queued;
  Family<Gauge>& checkpoint;
  Family<Gauge>& partitions_held;
  Family<Gauge>& claim_epoch;
  Family<Gauge>& claim_held;
  Family<Counter>& fenced;
  Family<Gauge>& sagas;
  Counter& scrape_errors;
};

// A process manager's instances, counted incrementally from its evs.saga.started and evs.saga.ended events.
struct Metrics::SagaTally {
  std::uint64_t started_from = 1, ended_from = 1;  // where the next read of each type starts
  std::uint64_t started = 0, completed = 0, compensated = 0;
};

Metrics::Metrics(EventStore& store)
    : store_(store), registry_(std::make_shared<prometheus::Registry>()), f_(std::make_unique<Families>(*registry_)) {
  observer_ = store_.add_append_observer([f = f_.get()](const EventStore::AppendGroup& g) {
    f->appends.Increment(static_cast<double>(g.appends));
    if (g.failed > 0) f->append_failures.Increment(static_cast<double>(g.failed));
    if (g.events > 0) f->events.Increment(static_cast<double>(g.events));
    for (const auto latency : g.latencies) f->latency.Observe(std::chrono::duration<double>(latency).count());
    f->group.Observe(static_cast<double>(g.appends));
  });
}

Metrics::~Metrics() { store_.remove_append_observer(observer_); }

std::uint64_t Metrics::appends() const { return static_cast<std::uint64_t>(f_->appends.Value()); }
std::uint64_t Metrics::events_appended() const { return static_cast<std::uint64_t>(f_->events.Value()); }

std::string Metrics::scrape(Site& site) {
  std::lock_guard lock(scrape_mutex_);
  try {
    update(site);
  } catch (const std::exception&) {
    // A database that is down must not hide the rest: the figures read before it, the append counters,
    // and the last values of the others are served; the error is counted.
    f_->scrape_errors.Increment();
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

namespace {

constexpr const char* states[] = {"starting", "catching_up", "live", "stalled", "stopped", "failed", "stored"};

bool is_process_manager(const ProjectionView& v, const cli::Application& app) {
  for (const cli::ProjectionEntry& e : app.projections) {
    if (e.projection == nullptr || e.projection->name() != v.health.name) continue;
    const auto types = e.projection->event_types();
    return std::find(types.begin(), types.end(), event_info_v<SagaDeadlineReached>.name) != types.end();
  }
  return false;
}

}  // namespace

void Metrics::update(Site& site) {
  if (auto head = site.store().last_position()) f_->head.Set(static_cast<double>(*head));
  for (const ProjectionView& v : site.projections()) {
    const ProjectionHealth& h = v.health;
    const prometheus::Labels p{{"projection", h.name}};
    f_->position.Add(p).Set(static_cast<double>(h.position));
    f_->lag_events.Add(p).Set(static_cast<double>(h.lag_events));
    f_->lag_seconds.Add(p).Set(h.lag_seconds);
    f_->rate.Add(p).Set(h.events_per_second);
    f_->dead_letters.Add(p).Set(static_cast<double>(h.dead_letters));
    f_->retry_queued.Add(p).Set(static_cast<double>(v.retry_queued));
    f_->partitions_held.Add(p).Set(static_cast<double>(h.node.empty() ? h.partitions : h.partitions_held));
    for (const char* s : states) f_->state.Add({{"projection", h.name}, {"state", s}}).Set(v.state == s ? 1 : 0);
    // Counters move by what the engine's totals grew since the last scrape. The totals of another run
    // (the engine was stopped and started again) count from zero, so all of them is new.
    const auto advance = [&](Family<Counter>& family, const char* what, std::uint64_t total) {
      Counted& counted = counted_[std::string(what) + "/" + h.name];
      const bool same_run = counted.run == h.run && total >= counted.total;
      family.Add(p).Increment(static_cast<double>(same_run ? total - counted.total : total));
      counted = {h.run, total};
    };
    advance(f_->processed, "processed", h.processed);
    advance(f_->errors, "errors", h.errors);
    advance(f_->fenced, "fenced", h.fenced);
    for (const auto& [partition, position] : v.partition_checkpoints)
      f_->checkpoint.Add({{"projection", h.name}, {"partition", std::to_string(partition)}})
          .Set(static_cast<double>(position));
    for (const PartitionClaim& c : h.claims) {
      const std::string partition = std::to_string(c.partition);
      f_->claim_epoch.Add({{"projection", h.name}, {"partition", partition}}).Set(static_cast<double>(c.epoch));
      const bool held = !c.owner.empty() && c.lease_until >= std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now());
      f_->claim_held.Add({{"projection", h.name}, {"partition", partition}}).Set(held ? 1 : 0);
    }
    if (is_process_manager(v, site.app())) update_sagas(site, h.name);
  }
}

void Metrics::update_sagas(Site& site, const std::string& name) {
  auto& tally = sagas_[name];
  if (!tally) tally = std::make_unique<SagaTally>();
  ReadAllFilter started{{std::string(event_info_v<SagaStarted>.name)}, {name}};
  ReadAllFilter ended{{std::string(event_info_v<SagaEnded>.name)}, {name}};
  // At most 20 batches of each type per scrape: a first scrape of a long history catches up over several
  // scrapes instead of holding this one (and an engine thread) for long.
  for (int i = 0; i < 20; ++i) {
    auto batch = site.store().read_all(tally->started_from, 1000, started);
    if (!batch || batch->next_position == tally->started_from) break;
    tally->started += batch->events.size();
    tally->started_from = batch->next_position;
  }
  for (int i = 0; i < 20; ++i) {
    auto batch = site.store().read_all(tally->ended_from, 1000, ended);
    if (!batch || batch->next_position == tally->ended_from) break;
    for (const RecordedEvent& e : batch->events) {
      SagaEnded end;
      if (!decode_into(e.payload, e.encoding, end)) continue;
      (end.status == SagaStatus::compensated ? tally->compensated : tally->completed) += 1;
    }
    tally->ended_from = batch->next_position;
  }
  const std::uint64_t ended_count = tally->completed + tally->compensated;
  f_->sagas.Add({{"projection", name}, {"state", "running"}})
      .Set(static_cast<double>(tally->started > ended_count ? tally->started - ended_count : 0));
  f_->sagas.Add({{"projection", name}, {"state", "completed"}}).Set(static_cast<double>(tally->completed));
  f_->sagas.Add({{"projection", name}, {"state", "compensated"}}).Set(static_cast<double>(tally->compensated));
}

}  // namespace evs::http
