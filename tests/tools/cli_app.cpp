// An application that embeds the evs tool (as `shop`): it registers its event types (cli_events.hpp) and one
// projection, so `check` verifies payloads against them and `read` decodes binary payloads.
#include "cli_events.hpp"

#include <evs/cli/cli.hpp>
#include <evs/projections/projection.hpp>

namespace {

class OrdersByCustomer : public evs::SqlProjection<OrdersByCustomer, clitest::OrderPlaced> {
 public:
  static constexpr std::string_view name = "orders_by_customer";
  void handle(const clitest::OrderPlaced&, const evs::RecordedEvent&, evs::SqlSession&) {}
};

}  // namespace

int main(int argc, char** argv) {
  OrdersByCustomer orders;
  evs::cli::Application app;
  app.name = "shop";
  app.projections.push_back({&orders, {}});
  return evs::cli::run(app, argc, argv);
}
