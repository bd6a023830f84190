// Must compile: the control for the compile-fail tests (same setup, nothing wrong).
#include "../../support/test_events.hpp"

#include <evs/core/aggregate.hpp>
#include <evs/eventstore/command_handler.hpp>

#include <array>
#include <optional>

enum class Colour { red, green };
BOOST_DESCRIBE_ENUM(Colour, red, green)

struct Line {
  std::string sku;
  std::int32_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(Line, (), (sku, quantity))

// Every kind of member counted once: nested struct, std::array, optional, enum, vector.
struct Everything {
  Line line;
  std::array<std::int32_t, 3> sizes{};
  std::optional<std::string> note;
  Colour colour = Colour::red;
  std::vector<Line> lines;
};
EVS_EVENT(Everything, "test.control_everything", 1, line, sizes, note, colour, lines)

struct State { std::int64_t n = 0; };
BOOST_DESCRIBE_STRUCT(State, (), (n))

class Account : public evs::Aggregate<Account, State, testdomain::Deposited, testdomain::Withdrawn> {
 public:
  static constexpr std::string_view category = "acc";
  using Aggregate::Aggregate;
  void apply(const testdomain::Deposited&) {}
  void apply(const testdomain::Withdrawn&) {}
  void ok() { raise(testdomain::Withdrawn{1}); }
  evs::Result<void> decide(std::int64_t cents) {
    if (cents <= 0) return evs::reject("must be positive");
    return emit(testdomain::Deposited{cents, ""}, testdomain::Withdrawn{cents});
  }
};

int main() {
  Account a;
  a.ok();
  (void)a.decide(1);
  evs::EventStore* store = nullptr;
  if (store) {
    evs::Repository<Account> repo(*store);
    (void)evs::create(repo, "1", &Account::decide, 5);
    (void)evs::update(repo, "1", {.idempotency_key = evs::Uuid::generate()}, [](Account& x) { x.ok(); });
    (void)store->append_event("s", evs::ExpectedVersion::any(), Everything{}, {.event_id = evs::Uuid::generate()});
  }
}
