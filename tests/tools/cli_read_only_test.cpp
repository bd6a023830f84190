// Inspecting writes nothing: the read-only commands leave a closed store (and a corrupt file) byte for byte
// as they found it, and create no -wal or -shm file next to it.
#include "cli_support.hpp"

#include "../support/store_layout.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

using namespace clitest;

namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool has_side_files(const std::string& db) {
  return std::filesystem::exists(db + "-wal") || std::filesystem::exists(db + "-shm") ||
         std::filesystem::exists(db + "-journal");
}

// Every command that only reads, with its arguments.
const std::vector<std::vector<std::string>> read_only_commands = {
    {"streams"},
    {"streams", "--json"},
    {"read", "order-1"},
    {"read", "order-1", "--backward", "--json"},
    {"tail", "--from", "1", "--count", "3"},
    {"stats"},
    {"stats", "--json"},
    {"check"},
    {"check", "--quick", "--json"},
    {"export", "--all"},
    {"export", "--stream", "order-1"},
    {"projections"},
    {"dead-letters", "list"},
    {"dead-letters", "show", "1"},
};

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("read-only commands leave a closed store unchanged and create no file next to it") {
  Fixture f;
  add_projection_rows(f.db, event_id_hex(f.db));
  REQUIRE_FALSE(has_side_files(f.db));  // closed: every connection has gone
  const std::string original = file_bytes(f.db);
  const std::string copy = (f.dir / "copy.db").string();
  for (const auto& command : read_only_commands) {
    std::string text;
    for (const auto& word : command) text += word + " ";
    CAPTURE(text);
    std::filesystem::copy_file(f.db, copy, std::filesystem::copy_options::overwrite_existing);
    auto args = command;
    args.insert(args.end(), {"--db", copy});
    auto r = run(evs_bin, args);
    CAPTURE(r.err);
    CHECK(r.code == 0);
    CHECK_FALSE(has_side_files(copy));
    CHECK(file_bytes(copy) == original);
  }
}

TEST_CASE("read-only commands read a store written before the schema records without changing it") {
  Fixture f;
  add_projection_rows(f.db, event_id_hex(f.db));
  evs::test::downgrade_to_schema_v1(f.db);
  REQUIRE_FALSE(has_side_files(f.db));
  const std::string original = file_bytes(f.db);
  // The standalone binary and an application with its registry (which compares recorded schemas at open).
  for (const std::string& binary : {evs_bin, shop_bin}) {
    for (const auto& command : read_only_commands) {
      std::string text = binary + " ";
      for (const auto& word : command) text += word + " ";
      CAPTURE(text);
      auto r = run(binary, f.with_db(command));
      CAPTURE(r.err);
      CHECK(r.code == 0);
      CHECK_FALSE(has_side_files(f.db));
      CHECK(file_bytes(f.db) == original);
    }
  }
  auto read = run(shop_bin, f.with_db({"read", "order-1"}));
  CHECK(contains(read.out, "clitest.item_added"));
  CHECK(read.err.empty());
  // check passes and says why there is no shape-drift check.
  auto check = run(shop_bin, f.with_db({"check"}));
  CHECK(check.code == 0);
  CHECK(contains(check.out, "schema records"));
  CHECK(contains(check.out, "not checked: the store has no schema records yet (its schema version 1 predates them)"));
  auto json = run(shop_bin, f.with_db({"check", "--json"}));
  bool found = false;
  for (const auto& d : parse_json_lines(json.out))
    if (std::string(d["check"].GetString()) == "schema records") {
      found = true;
      CHECK(d["ok"].IsNull());
    }
  CHECK(found);
}

TEST_CASE("read-only commands leave a corrupt file unchanged and create no file next to it") {
  Fixture f;
  std::string bytes = file_bytes(f.db);
  REQUIRE(bytes.size() > 4096);
  REQUIRE(bytes[18] == 2);  // the header says WAL mode: a plain read-only open would create -wal and -shm
  for (std::size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 3);
  const std::string corrupt = (f.dir / "corrupt.db").string();
  std::ofstream(corrupt, std::ios::binary) << bytes;
  for (const auto& command : read_only_commands) {
    std::string text;
    for (const auto& word : command) text += word + " ";
    CAPTURE(text);
    auto args = command;
    args.insert(args.end(), {"--db", corrupt});
    auto r = run(evs_bin, args);
    CAPTURE(r.out);
    CAPTURE(r.err);
    CHECK_FALSE(has_side_files(corrupt));
    CHECK(file_bytes(corrupt) == bytes);
  }
}

TEST_CASE("read-only commands read through the -wal of a store that a writer has open") {
  Fixture f;
  evs::SqliteEventStore writer({f.db});  // open: -wal and -shm exist, and reads go through them
  append(writer, "order-3", {binary_event(clitest::OrderPlaced{"o-3", "carol", 100})});
  auto stats = run(evs_bin, f.with_db({"stats", "--json"}));
  REQUIRE(stats.code == 0);
  CHECK(parse_json(lines(stats.out).at(0))["events"].GetUint64() == 6);
}

TEST_CASE("tail on a closed store sees the commits of a writer that opens it later") {
  Fixture f;
  REQUIRE_FALSE(has_side_files(f.db));
  // From position 6, the next one: whether tail starts before the writer or after it, it must print it.
  Child tail(evs_bin, f.with_db({"tail", "--from", "6", "--count", "1", "--json"}));
  tail.pump(300);  // usually starts on the closed (immutable) store
  {
    evs::SqliteEventStore writer({f.db});
    append(writer, "order-3", {binary_event(clitest::OrderPlaced{"o-3", "carol", 100})});
  }
  auto r = tail.finish();
  CHECK(r.code == 0);
  auto docs = parse_json_lines(r.out);
  REQUIRE(docs.size() == 1);
  CHECK(std::string(docs[0]["stream"].GetString()) == "order-3");
}

}  // TEST_SUITE
