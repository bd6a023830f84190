// Asio forms of the engine's asynchronous operations. Include this where you use Asio anyway; the rest of
// evs keeps Asio out of its public headers.
//
//   co_await evs::async_wait_for(engine, "orders_by_customer", appended.last_position, 2s, asio::use_awaitable);
#pragma once

#include "evs/projections/engine.hpp"

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/recycling_allocator.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace evs {

// Completes with (evs::Result<void>) once projection `name` has processed `position`, with the errors of
// ProjectionEngine::wait_for. Works with any completion token (callbacks, use_awaitable, use_future, ...).
// Follows Asio's contract for asynchronous operations: the handler runs on its associated executor (the
// engine's io_context by default) and never inside this call, also when the result is known at once (it
// is then posted); while the operation is pending, it counts as outstanding work of that executor, so its
// run() does not return before the handler has run.
template <class CompletionToken>
auto async_wait_for(ProjectionEngine& engine, std::string_view name, std::uint64_t position,
                    std::chrono::milliseconds timeout, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(Result<void>)>(
      [&engine, position, timeout](auto handler, std::string projection) {
        using Handler = decltype(handler);
        auto work = boost::asio::make_work_guard(handler, engine.io_context());
        // The engine's callback is copyable (std::function); the handler may be move-only.
        auto state = std::make_shared<std::pair<Handler, decltype(work)>>(std::move(handler), std::move(work));
        engine.async_wait_for(projection, position, timeout, [state](Result<void> r) {
          auto& [h, w] = *state;
          const auto alloc = boost::asio::get_associated_allocator(h, boost::asio::recycling_allocator<void>());
          boost::asio::post(w.get_executor(),
                            boost::asio::bind_allocator(alloc, [state, r = std::move(r)]() mutable {
                              auto guard = std::move(state->second);  // the work ends with this handler
                              std::move(state->first)(std::move(r));
                            }));
        });
      },
      token, std::string(name));
}

}  // namespace evs
