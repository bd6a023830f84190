// Asio forms of the engine's asynchronous operations. Include this where you use Asio anyway; the rest of
// evs keeps Asio out of its public headers.
//
//   co_await evs::async_wait_for(engine, "orders_by_customer", appended.last_position, 2s, asio::use_awaitable);
#pragma once

#include "evs/projections/engine.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>

#include <string>

namespace evs {

// Completes with (evs::Result<void>) once projection `name` has processed `position`, with the errors of
// ProjectionEngine::wait_for. Works with any completion token (callbacks, use_awaitable, use_future, ...);
// the handler runs on its associated executor (the engine's io_context by default).
template <class CompletionToken>
auto async_wait_for(ProjectionEngine& engine, std::string_view name, std::uint64_t position,
                    std::chrono::milliseconds timeout, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(Result<void>)>(
      [&engine, position, timeout](auto handler, std::string projection) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto executor = boost::asio::get_associated_executor(*shared, engine.io_context().get_executor());
        engine.async_wait_for(projection, position, timeout, [shared, executor](Result<void> r) {
          boost::asio::dispatch(executor, [shared, r = std::move(r)]() mutable { std::move(*shared)(std::move(r)); });
        });
      },
      token, std::string(name));
}

}  // namespace evs
