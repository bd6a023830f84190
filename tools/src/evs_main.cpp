// The standalone `evs` binary: the tool without domain types (no registry, no projections). It works on any
// evs SQLite file; payloads it cannot decode are shown as size and hex. Applications embed evs::cli in their
// own binary to decode payloads, check them against their registry, and rebuild their projections.
#include <evs/cli/cli.hpp>
#ifdef EVS_HAS_HTTP
#include <evs/http/serve_command.hpp>
#endif

int main(int argc, char** argv) {
  static const evs::EventRegistry no_types;  // deliberately empty: this binary knows no event types
  evs::cli::Application app;
  app.name = "evs";
  app.registry = &no_types;
#ifdef EVS_HAS_HTTP
  app.serve = evs::http::serve_command;
#endif
  return evs::cli::run(app, argc, argv);
}
