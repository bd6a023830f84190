// The store in data/checkout-v1.db was written before OrderPlaced had a currency: its orders are stored as
// checkout.order_placed v1. Today's code reads them (repository, read models, the embedded tool) as v2, in
// US dollars, and leaves what is stored untouched. Each test works on a copy of the file.
#include "app.hpp"
#include "audit.hpp"

#include <doctest/doctest.h>

#include <random>
#include <sstream>

using namespace checkout;

namespace {

// A copy of the old store in a fresh directory, removed with everything in it at the end.
class OldStoreCopy {
 public:
  OldStoreCopy() {
    dir_ = std::filesystem::temp_directory_path() / ("checkout-v1-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    std::filesystem::copy_file(CHECKOUT_V1_STORE, db());
  }
  ~OldStoreCopy() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  OldStoreCopy(const OldStoreCopy&) = delete;
  OldStoreCopy& operator=(const OldStoreCopy&) = delete;
  std::filesystem::path db() const { return dir_ / "checkout.db"; }

 private:
  std::filesystem::path dir_;
};

struct ToolRun {
  int code = -1;
  std::string out, err;
};
// `checkout --db DB args...`, as the executable runs it.
ToolRun tool(const std::filesystem::path& db, std::vector<std::string> args) {
  args.insert(args.begin(), {"checkout", "--db", db.string()});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  ReadModels models;
  std::ostringstream out, err;
  ToolRun r;
  r.code = evs::cli::run(models.tool(db), int(argv.size()), argv.data(), out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("old store: its orders are stored as v1 and load through the repository as v2, in USD") {
  OldStoreCopy copy;
  evs::SqliteEventStore store({.path = copy.db()});
  const auto placed = store.read_stream("order-o-1").value().at(0);
  CHECK(placed.type == "checkout.order_placed");
  CHECK(placed.schema_version == 1);

  evs::Repository<Order> orders(store);
  const OrderState o1 = orders.load("o-1").value().state();
  CHECK(o1.status == OrderStatus::shipped);
  CHECK(o1.total_cents == 5000);
  CHECK(o1.currency == "USD");
  CHECK(o1.charge_id == "ch_1");
  const OrderState o3 = orders.load("o-3").value().state();
  CHECK(o3.status == OrderStatus::cancelled);
  CHECK(o3.refunded);
  CHECK(o3.currency == "USD");
  // An old order still obeys today's rules: a cancelled order cannot ship.
  CHECK_FALSE(orders.load("o-3").value().ship());
}

TEST_CASE("old store: the read models rebuilt from it show every old order in USD") {
  OldStoreCopy copy;
  const auto rebuilt = tool(copy.db(), {"rebuild", "orders_by_customer"});
  REQUIRE_MESSAGE(rebuilt.code == 0, rebuilt.err);
  CHECK(ReadModelDb(read_db_for(copy.db()))
            .rows("SELECT order_id, customer, sku, quantity, total_cents, currency, status FROM orders "
                  "ORDER BY order_id") ==
        std::vector<std::string>{"o-1|alice|BOOK|2|5000|USD|shipped", "o-2|bob|MUG|1|1200|USD|shipped",
                                 "o-3|carol|POSTER|3|2700|USD|cancelled", "o-4|alice|MUG|4|4800|USD|shipped"});
}

TEST_CASE("old store: the embedded tool's check passes and read shows the stored v1 and the current v2") {
  OldStoreCopy copy;
  const auto check = tool(copy.db(), {"check"});
  CHECK_MESSAGE(check.code == 0, check.out << check.err);
  CHECK(has(check.out, "upcasting chains"));
  CHECK(has(check.out, "event type checkout.order_placed v1"));
  CHECK(has(check.out, "check passed"));

  const auto read = tool(copy.db(), {"--json", "read", "order-o-2"});
  REQUIRE_MESSAGE(read.code == 0, read.err);
  CHECK(has(read.out, R"("type":"checkout.order_placed","schema_version":1)"));
  CHECK(has(read.out, R"("current":[{"type":"checkout.order_placed","schema_version":2,"payload":{"order_id":"o-2",)"
                      R"("customer":"bob","email":"bob@example.com","sku":"MUG","quantity":1,"total_cents":1200,)"
                      R"("currency":"USD","charge_id":"ch_2"}}])"));
}
