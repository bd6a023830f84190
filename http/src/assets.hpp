// Internal: the dashboard's files (http/assets/), compiled into the library by embed_assets.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace evs::http {

struct Asset {
  std::string_view name;  // the file name: "index.html", "app.js", "style.css"
  std::string_view bytes;
};

const std::vector<Asset>& assets();

}  // namespace evs::http
