// `import`: appends the events of a JSON-lines file (as written by export) to --db, keeping each stream's
// order.
#include "commands.hpp"
#include "format.hpp"
#include "sql.hpp"
#include "store_sql.hpp"

#include "evs/core/detail/json_parse.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <span>

namespace evs::cli {
namespace {

// ---- import -----------------------------------------------------------------------------------------------

struct ImportArgs {
  std::string file;
};

struct ImportedEvent {
  std::string stream;
  EventData data;
  std::size_t line = 0;
};

std::string member_string(const rapidjson::Value& o, const char* key, bool required, const std::string& where) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd() || it->value.IsNull()) {
    if (required) throw Failure(where + ": missing \"" + key + "\"");
    return {};
  }
  if (!it->value.IsString()) throw Failure(where + ": \"" + key + "\" is not a string");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

ImportedEvent parse_line(std::string_view line, const std::string& where) {
  rapidjson::Document doc;
  if (!evs::detail::parse_json(line, doc).empty() || !doc.IsObject()) throw Failure(where + ": not a JSON object");
  ImportedEvent ev;
  ev.stream = member_string(doc, "stream", true, where);
  if (ev.stream.empty()) throw Failure(where + ": \"stream\" is empty");
  const std::string id = member_string(doc, "event_id", true, where);
  auto uuid = Uuid::parse(id);
  if (!uuid) throw Failure(where + ": \"event_id\" '" + id + "' is not a UUID");
  ev.data.event_id = *uuid;
  ev.data.type = member_string(doc, "type", true, where);
  if (ev.data.type.empty()) throw Failure(where + ": \"type\" is empty");
  if (auto it = doc.FindMember("schema_version"); it != doc.MemberEnd()) {
    if (!it->value.IsUint() || it->value.GetUint() == 0)
      throw Failure(where + ": \"schema_version\" is not a positive integer");
    ev.data.schema_version = it->value.GetUint();
  }
  const std::string encoding = member_string(doc, "encoding", false, where);
  const auto base64 = doc.FindMember("payload_base64");
  const auto payload = doc.FindMember("payload");
  if (encoding == "binary")
    ev.data.encoding = Encoding::binary;
  else if (encoding == "json")
    ev.data.encoding = Encoding::json;
  else if (encoding.empty())
    ev.data.encoding = base64 != doc.MemberEnd() ? Encoding::binary : Encoding::json;
  else
    throw Failure(where + ": \"encoding\" must be \"binary\" or \"json\", not '" + encoding + "'");
  if (base64 != doc.MemberEnd()) {
    if (!base64->value.IsString()) throw Failure(where + ": \"payload_base64\" is not a string");
    auto bytes = base64_decode({base64->value.GetString(), base64->value.GetStringLength()});
    if (!bytes) throw Failure(where + ": \"payload_base64\" is not valid base64");
    ev.data.payload = std::move(*bytes);
  } else if (payload != doc.MemberEnd()) {
    if (ev.data.encoding != Encoding::json)
      throw Failure(where + ": a binary event needs \"payload_base64\" (\"payload\" is JSON)");
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>, rapidjson::CrtAllocator,
                      rapidjson::kWriteNanAndInfFlag>
        writer(buffer);
    payload->value.Accept(writer);
    ev.data.payload.assign(buffer.GetString(), buffer.GetSize());
  } else {
    throw Failure(where + ": missing \"payload\" or \"payload_base64\"");
  }
  ev.data.metadata.correlation_id = member_string(doc, "correlation_id", false, where);
  ev.data.metadata.causation_id = member_string(doc, "causation_id", false, where);
  if (auto it = doc.FindMember("metadata"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsObject()) throw Failure(where + ": \"metadata\" is not an object");
    for (const auto& m : it->value.GetObject()) {
      if (!m.value.IsString()) throw Failure(where + ": metadata values must be strings");
      ev.data.metadata.user.emplace(std::string(m.name.GetString(), m.name.GetStringLength()),
                                    std::string(m.value.GetString(), m.value.GetStringLength()));
    }
  }
  return ev;
}

// Appends the file's events stream by stream, keeping each stream's order. The file's events of one stream
// are a run of that stream: its first event is either new to the target stream (the run goes after the
// stream's last event) or stored there at some version v (the run is aligned there). Events already stored
// at their aligned versions (same id at the same version) are skipped, so re-running an interrupted import
// completes it; anything else (a different event at that version, an id stored elsewhere or out of order)
// stops the import with an error naming the line, and leaves the stream as it was.
class StreamImporter {
 public:
  StreamImporter(const Context& ctx, EventStore& store) : store_(store), lookup_(open_store_sql(ctx, false)) {}

  std::uint64_t imported = 0, skipped = 0;
  std::set<std::string> streams_touched;

  // `run`: consecutive events of one stream, in file order.
  void import_run(std::span<const ImportedEvent> run) {
    const std::string& stream = run.front().stream;
    auto at = next_version_.find(stream);
    if (at == next_version_.end()) at = next_version_.emplace(stream, align(run.front())).first;
    const std::uint64_t first = at->second;

    // Compare with what the target holds from `first` on: those events must be the file's, in its order.
    ReadStreamOptions options;
    options.from_version = first;
    options.max_count = run.size();
    auto stored = store_.read_stream(stream, options);
    if (!stored && !stored.error().is(errc::stream_not_found)) fail(run.front(), stored.error().what());
    std::size_t matched = 0;
    if (stored) {
      for (const RecordedEvent& e : *stored) {
        const ImportedEvent& wanted = run[matched];
        if (e.event_id != wanted.data.event_id)
          fail(wanted, "stream " + stream + " holds event " + e.event_id.to_string() + " at version " +
                           std::to_string(e.version) + " where the file has " + wanted.data.event_id.to_string() +
                           ": the target's stream is not in the file's order");
        ++matched;
      }
    }
    skipped += matched;
    if (matched < run.size()) {
      std::vector<EventData> rest;
      for (const ImportedEvent& e : run.subspan(matched)) rest.push_back(e.data);
      const std::uint64_t expected = first + matched - 1;
      auto r = store_.append(stream, ExpectedVersion::exact(expected), rest);
      if (!r) {
        if (r.error().is(errc::duplicate_event))
          fail(run[matched], std::string(r.error().what()) + "; the file's events of stream " + stream +
                                 " are stored in another order or another stream");
        if (r.error().is(errc::wrong_expected_version))
          fail(run[matched], std::string(r.error().what()) + "; another writer appended to stream " + stream +
                                 " during the import");
        fail(run[matched], r.error().what());
      }
      imported += rest.size();
      streams_touched.insert(stream);
    }
    at->second = first + run.size();
  }

 private:
  // The target version of the stream's first event in the file: where that event is stored already, or
  // after the stream's last event.
  std::uint64_t align(const ImportedEvent& first) {
    std::optional<std::pair<std::string, std::uint64_t>> stored;  // the stream and version holding it
    lookup_->each("SELECT s.name, e.version FROM events e JOIN streams s ON s.id = e.stream WHERE e.event_id = $1",
                  {SqlParam::uuid(first.data.event_id)}, [&](const SqlRow& row) {
                    stored.emplace(std::string(row.text(0)), static_cast<std::uint64_t>(row.integer(1)));
                  });
    if (stored) {
      if (stored->first != first.stream)
        fail(first, "event " + first.data.event_id.to_string() + " is already stored in stream " + stored->first);
      return stored->second;
    }
    return must(store_.stream_version(first.stream)) + 1;
  }

  [[noreturn]] void fail(const ImportedEvent& at, const std::string& why) const {
    throw Failure("import stopped at line " + std::to_string(at.line) + " (stream " + at.stream + "): " + why + "; " +
                  plural(imported, "event was", "events were") + " imported before it");
  }

  EventStore& store_;
  std::unique_ptr<StoreSql> lookup_;
  std::map<std::string, std::uint64_t> next_version_;  // per stream: the target version of its next file event
};

void import_events(Context& ctx, const ImportArgs& args) {
  // Read and validate everything first: a malformed file imports nothing.
  std::ifstream file;
  std::istream* in = &std::cin;
  const std::string source = args.file == "-" ? std::string("stdin") : args.file;
  if (args.file != "-") {
    file.open(args.file, std::ios::binary);
    if (!file) throw Failure("cannot read " + args.file + ": " + std::strerror(errno));
    in = &file;
  }
  std::vector<ImportedEvent> events;
  std::string line;
  for (std::size_t n = 1; std::getline(*in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    events.push_back(parse_line(line, "line " + std::to_string(n) + " of " + source));
    events.back().line = n;
  }
  if (in->bad()) throw Failure("cannot read " + source + ": " + std::strerror(errno));

  // The target may be new: import creates it (unlike every other command).
  if (ctx.db.empty()) throw CLI::RequiredError("--db");
  auto store = open_store_at(ctx, "--db", ctx.db, true, SchemaCheck::refuse, true);

  StreamImporter importer(ctx, *store);
  for (std::size_t i = 0; i < events.size();) {
    // One append per run of consecutive events of one stream.
    std::size_t j = i;
    while (j < events.size() && events[j].stream == events[i].stream && j - i < batch_size) ++j;
    importer.import_run(std::span(events).subspan(i, j - i));
    i = j;
  }
  const std::uint64_t imported = importer.imported, skipped = importer.skipped;
  const std::set<std::string>& streams_touched = importer.streams_touched;
  if (ctx.json)
    ctx.out << JsonObject().num("imported", imported).num("skipped", skipped).num("streams", streams_touched.size()).str("db", ctx.where()).text()
            << '\n';
  else
    ctx.out << "imported " << plural(imported, "event", "events") << " into " << ctx.where()
            << (imported > 0 ? " (" + plural(streams_touched.size(), "stream", "streams") + ")" : std::string())
            << "; skipped " << skipped << " already stored\n";
}

}  // namespace

void add_import_command(CLI::App& cli, Context& ctx) {
  auto args = std::make_shared<ImportArgs>();
  auto* sub = cli.add_subcommand("import", "Append events from JSON lines (as written by export) to --db");
  sub->add_option("file", args->file, "the JSON-lines file, or - for stdin")->required();
  sub->footer(
      "Keeps event ids, types, schema versions, encodings and metadata, and each stream's order. A stream's "
      "events in the file go after the target stream's last event, or, when the first of them is stored there "
      "already, at the versions that follow it: events stored at their versions (same id, same version) are "
      "skipped, so importing a file again, or re-running an interrupted import, stores only what is missing. A "
      "different event at one of those versions, or an id stored in another stream, stops the import with an "
      "error. Positions, versions and recorded times are assigned by the target store. A malformed line imports "
      "nothing. Creates --db if it does not exist (a SQLite file, or the store's tables in a PostgreSQL schema). "
      "To move a whole store with its positions, times and snapshots, use copy.");
  sub->callback([&ctx, args] { import_events(ctx, *args); });
}

}  // namespace evs::cli
