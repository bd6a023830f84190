// `import` keeps every stream's order in the target, resumes an interrupted import, and `check` finds a
// stream whose versions are not in log order.
#include "cli_support.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace clitest;

namespace {

evs::EventData json_event(int n) {
  return raw_event("clitest.note", R"({"n":)" + std::to_string(n) + "}", evs::Encoding::json);
}

// The event ids of `stream` in `db`, in version order.
std::vector<evs::Uuid> stream_ids(const std::string& db, const std::string& stream) {
  evs::SqliteOptions o;
  o.path = db;
  o.read_only = true;
  evs::SqliteEventStore store(o);
  std::vector<evs::Uuid> out;
  auto events = store.read_stream(stream);
  if (!events) return out;
  for (const auto& e : *events) out.push_back(e.event_id);
  return out;
}

std::string write_file(const evs::test::TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("import of a stream's later slice and then the whole stream fails and keeps the stream's order") {
  evs::test::TempDir dir;
  const std::string source = (dir / "source.db").string();
  {
    evs::SqliteEventStore store({source});
    append(store, "s-1", {json_event(1), json_event(2), json_event(3), json_event(4), json_event(5)});
  }
  const auto slice = run(evs_bin, {"export", "--stream", "s-1", "--from", "3", "--db", source});
  const auto whole = run(evs_bin, {"export", "--stream", "s-1", "--db", source});
  REQUIRE(slice.code == 0);
  REQUIRE(whole.code == 0);

  const std::string target = (dir / "target.db").string();
  REQUIRE(run(evs_bin, {"import", "-", "--db", target}, slice.out).code == 0);
  const auto before = stream_ids(target, "s-1");
  REQUIRE(before.size() == 3);

  // Events 1 and 2 would have to go before the stored 3..5: the import refuses instead of appending them after.
  auto r = run(evs_bin, {"import", "-", "--db", target}, whole.out);
  check_one_line_error(r, 1);
  CHECK(contains(r.err, "line 1"));
  CHECK(contains(r.err, "s-1"));
  CHECK(stream_ids(target, "s-1") == before);
  CHECK(run(evs_bin, {"check", "--db", target}).code == 0);
}

TEST_CASE("import stops at an event that differs from the one stored at its version, or is in another stream") {
  evs::test::TempDir dir;
  const std::string source = (dir / "source.db").string();
  {
    evs::SqliteEventStore store({source});
    append(store, "s-1", {json_event(1), json_event(2)});
  }
  const auto file = run(evs_bin, {"export", "--stream", "s-1", "--db", source});
  REQUIRE(file.code == 0);
  const auto first_line = lines(file.out).at(0) + "\n";

  SUBCASE("another event at the second version") {
    const std::string target = (dir / "target.db").string();
    REQUIRE(run(evs_bin, {"import", "-", "--db", target}, first_line).code == 0);
    {
      evs::SqliteEventStore store({target});
      append(store, "s-1", {json_event(99)});  // version 2 is now another event
    }
    const auto before = stream_ids(target, "s-1");
    auto r = run(evs_bin, {"import", "-", "--db", target}, file.out);
    check_one_line_error(r, 1);
    CHECK(contains(r.err, "line 2"));
    CHECK(contains(r.err, "version 2"));
    CHECK(stream_ids(target, "s-1") == before);
  }
  SUBCASE("the first event stored in another stream") {
    const std::string target = (dir / "target.db").string();
    const std::string moved = std::string(lines(file.out).at(0)).replace(lines(file.out).at(0).find("\"s-1\""), 5, "\"t-1\"");
    REQUIRE(run(evs_bin, {"import", "-", "--db", target}, moved + "\n").code == 0);
    auto r = run(evs_bin, {"import", "-", "--db", target}, file.out);
    check_one_line_error(r, 1);
    CHECK(contains(r.err, "already stored in stream t-1"));
    CHECK(stream_ids(target, "s-1").empty());
  }
}

TEST_CASE("re-running an interrupted import completes the file, in order, also after a stream's own events") {
  evs::test::TempDir dir;
  const std::string source = (dir / "source.db").string();
  {
    evs::SqliteEventStore store({source});
    for (int round = 0; round < 3; ++round) {  // interleaved streams: a stream's lines are not consecutive
      append(store, "a-1", {json_event(10 * round + 1), json_event(10 * round + 2)});
      append(store, "b-1", {json_event(10 * round + 3)});
    }
  }
  const auto all = run(evs_bin, {"export", "--all", "--db", source});
  REQUIRE(all.code == 0);
  const auto file_lines = lines(all.out);
  REQUIRE(file_lines.size() == 9);

  const std::string target = (dir / "target.db").string();
  {
    evs::SqliteEventStore store({target});
    append(store, "a-1", {json_event(0)});  // the target's stream has an event of its own: the file goes after it
  }
  std::string head;
  for (std::size_t i = 0; i < 4; ++i) head += file_lines[i] + "\n";  // the import was interrupted after line 4
  REQUIRE(run(evs_bin, {"import", "-", "--db", target}, head).code == 0);

  const std::string path = write_file(dir, "all.jsonl", all.out);
  auto r = run(evs_bin, {"import", path, "--db", target, "--json"});
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  auto summary = parse_json(lines(r.out).at(0));
  CHECK(summary["imported"].GetUint64() == 5);
  CHECK(summary["skipped"].GetUint64() == 4);

  auto a = stream_ids(target, "a-1");
  REQUIRE(a.size() == 7);
  a.erase(a.begin());
  CHECK(a == stream_ids(source, "a-1"));
  CHECK(stream_ids(target, "b-1") == stream_ids(source, "b-1"));
  CHECK(run(evs_bin, {"check", "--db", target}).code == 0);

  // And once complete, again: nothing new.
  auto again = run(evs_bin, {"import", path, "--db", target, "--json"});
  REQUIRE(again.code == 0);
  CHECK(parse_json(lines(again.out).at(0))["skipped"].GetUint64() == 9);
}

TEST_CASE("check fails when a stream's versions are not in the order of their global positions") {
  Fixture f;
  REQUIRE(run(evs_bin, f.with_db({"check"})).code == 0);
  // order-1 is at positions 1, 2 and 5: give position 1 version 2 and position 2 version 1.
  sql(f.db, "UPDATE events SET version = -1 WHERE position = 1; UPDATE events SET version = 1 WHERE position = 2; "
            "UPDATE events SET version = 2 WHERE position = 1");
  auto r = run(evs_bin, f.with_db({"check", "--json"}));
  CHECK(r.code == 1);
  bool reported = false;
  for (const auto& line : lines(r.out)) {
    auto doc = parse_json(line);
    if (std::string(doc["check"].GetString()) != "stream versions") continue;
    reported = true;
    CHECK_FALSE(doc["ok"].GetBool());
    CHECK(contains(doc["detail"].GetString(), "order-1"));
  }
  CHECK(reported);
}

}  // TEST_SUITE
