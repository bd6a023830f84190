// An application embedding the evs tool, for the rebuild tests: `rebuild_app --db EVENTS rebuild totals`.
// The read model lives in the file named by EVS_TEST_READ_MODEL; EVS_TEST_PARTITIONS sets its partition count.
#include "totals_projection.hpp"

#include <evs/cli/cli.hpp>

#include <cstdlib>

int main(int argc, char** argv) {
  rebuildtest::Totals totals;
  evs::cli::Application app;
  app.name = "rebuild_app";
  evs::ProjectionOptions options;
  const char* read_model = std::getenv("EVS_TEST_READ_MODEL");
  options.database = read_model ? read_model : "read.db";
  if (const char* partitions = std::getenv("EVS_TEST_PARTITIONS")) options.partitions = std::strtoul(partitions, nullptr, 10);
  app.projections.push_back({&totals, options});
  return evs::cli::run(app, argc, argv);
}
