"""An asyncio event loop driven by the host's `wasi:io/poll`.

A plugin has no threads and no sockets: every operation is a host future
with a pollable. Coroutines that wait on one register it here; when no
callback is ready, the loop hands every registered pollable to
`poll.poll` in one call (the host blocks until at least one is ready) and
wakes the coroutines whose pollables are. So `asyncio.gather` over many
host operations keeps them all in flight at once.
"""

import asyncio
import time

from wit_world.imports import poll


class PollLoop(asyncio.AbstractEventLoop):
    """The smallest event loop `asyncio.gather`, tasks and futures need."""

    def __init__(self):
        self._ready = []
        self._waiting = []  # (pollable, future)
        self._running = False
        self._exception = None

    async def wait_for(self, pollable) -> None:
        """Resolve once `pollable` is ready."""
        future = self.create_future()
        entry = (pollable, future)
        self._waiting.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            # Let go of the pollable now: the host refuses to drop a future
            # while a pollable of it is alive (the instance would trap).
            if entry in self._waiting:
                self._waiting.remove(entry)
                pollable.__exit__(None, None, None)
            raise

    def run_until_complete(self, future):
        future = asyncio.ensure_future(future, loop=self)
        self._running = True
        asyncio.events._set_running_loop(self)
        try:
            while not future.done():
                handles, self._ready = self._ready, []
                for handle in handles:
                    if not handle._cancelled:
                        handle._run()
                if self._exception is not None:
                    raise self._exception
                if self._ready or future.done():
                    continue
                if not self._waiting:
                    raise RuntimeError("every coroutine waits, and on nothing the host runs")
                pollables = [p for p, _ in self._waiting]
                ready = set(poll.poll(pollables))
                still = []
                for index, (pollable, waiter) in enumerate(self._waiting):
                    if index in ready:
                        pollable.__exit__(None, None, None)
                        if not waiter.done():
                            waiter.set_result(None)
                    else:
                        still.append((pollable, waiter))
                self._waiting = still
            return future.result()
        finally:
            self._running = False
            asyncio.events._set_running_loop(None)

    def call_soon(self, callback, *args, context=None):
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_later(self, delay, callback, *args, context=None):
        if delay <= 0:
            return self.call_soon(callback, *args, context=context)
        # The loop's one way to wait is the host's pollables, and the world
        # gives a plugin no clock to wait on: say so, rather than asyncio's
        # bare NotImplementedError.
        raise NotImplementedError(
            "asyncio timers (asyncio.sleep, asyncio.wait_for, asyncio.timeout) do not run in a wscan "
            "plugin: give the host operation a timeout_ms instead"
        )

    def call_at(self, when, callback, *args, context=None):
        return self.call_later(when - self.time(), callback, *args, context=context)

    def time(self):
        return time.monotonic()

    def create_task(self, coro, *, name=None, context=None):
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def create_future(self):
        return asyncio.Future(loop=self)

    def call_exception_handler(self, context):
        self._exception = context.get("exception")

    def get_debug(self):
        return False

    def is_running(self):
        return self._running

    def is_closed(self):
        return False

    def stop(self):
        self._running = False

    def close(self):
        pass

    async def shutdown_asyncgens(self):
        pass
