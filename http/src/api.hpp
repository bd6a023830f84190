// Internal: the routes of /api/ (the shapes are listed in docs/operations.md). Each takes the request and
// its decoded path arguments and returns the response; a bad argument or a missing thing throws HttpError,
// a storage failure evs::Exception (the router answers 500 or 503).
#pragma once

#include "message.hpp"

#include "evs/core/envelope.hpp"

#include <cstdint>
#include <optional>

#include <string>

namespace evs::http {

class Site;

// api_store.cpp: the store.
Response api_overview(Site& site, const Request& r);
Response api_categories(Site& site, const Request& r);
Response api_streams(Site& site, const Request& r);
Response api_stream(Site& site, const Request& r, const std::string& stream);
Response api_event(Site& site, const Request& r, const std::string& position);
Response api_correlation(Site& site, const Request& r, const std::string& correlation_id);

// api_projections.cpp: projections, dead letters, rebuilds.
Response api_projections(Site& site, const Request& r);
Response api_dead_letters(Site& site, const Request& r);
Response api_dead_letter(Site& site, const Request& r, const std::string& projection, const std::string& id);
// action: "retry" or "skip" (docs/projections.md, "Dead-letter states").
Response api_dead_letter_action(Site& site, const Request& r, const std::string& projection, const std::string& id,
                                const std::string& action);
Response api_rebuilds(Site& site, const Request& r);

// One event as the API shows it (the tool's --json form: envelope, decoded payload, current after upcasting).
std::string event_json(Site& site, const RecordedEvent& e);
// The event at `position`, or nullopt.
std::optional<RecordedEvent> event_at(Site& site, std::uint64_t position);

}  // namespace evs::http
