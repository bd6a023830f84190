// Internal: the Prometheus metrics of a server, on prometheus-cpp's registry and text serializer. Append
// figures come from the store's append observer as they happen; everything else (head, projections,
// claims, sagas) is read from the Site when /metrics is scraped. Every name is listed in
// docs/operations.md. Labels: projection, partition, state; never a node, a stream or an event id.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace prometheus {
class Registry;
}

namespace evs {
class EventStore;
}

namespace evs::http {

class Site;

class Metrics {
 public:
  explicit Metrics(EventStore& store);  // observes the store's appends until destroyed
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The text exposition (format 0.0.4), with the figures read now.
  std::string scrape(Site& site);
  // Appends and events appended through the store object since the server started.
  std::uint64_t appends() const;
  std::uint64_t events_appended() const;

 private:
  struct Families;
  struct SagaTally;
  void update(Site& site);
  void update_sagas(Site& site, const std::string& name);

  EventStore& store_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> f_;
  std::uint64_t observer_ = 0;
  std::mutex scrape_mutex_;  // one scrape at a time updates the gauges
  // What the delta counters were last advanced to: an engine run (ProjectionHealth::run) and its total.
  struct Counted {
    std::uint64_t run = 0, total = 0;
  };
  std::map<std::string, Counted> counted_;
  std::map<std::string, std::unique_ptr<SagaTally>> sagas_;
};

}  // namespace evs::http
