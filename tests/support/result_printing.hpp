// Lets doctest print evs::Result values in failure messages ("ok" or the error with its message).
#pragma once

#include <evs/core/error.hpp>

#include <doctest/doctest.h>

namespace doctest {
template <class T>
struct StringMaker<boost::system::result<T, evs::Error>> {
  static String convert(const boost::system::result<T, evs::Error>& r) {
    return r ? String("ok") : String(("error: " + r.error().what()).c_str());
  }
};
}  // namespace doctest
