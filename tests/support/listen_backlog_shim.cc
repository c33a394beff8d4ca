// Linked into the mock-upstream programs (tests and bench): raises every listen()
// backlog to SOMAXCONN.
//
// Debian's cpp-httplib 0.11.4 is a compiled library whose Server::listen() calls
// ::listen(fd, CPPHTTPLIB_LISTEN_BACKLOG = 5); defining the macro in our code cannot change
// it. With 64 or 512 connections opened at once (bench_concurrency goals 2-4) the accept
// queue overflows (TcpExtListenOverflows), the dropped SYNs are retransmitted after 1 s,
// then 3 s, and the burst's wall time measures the kernel's SYN retry timer, not the server.
// This executable's listen() interposes on libc's for the library (the dynamic linker binds
// the library's undefined `listen` to the executable's definition first).

#include <dlfcn.h>
#include <sys/socket.h>

extern "C" int listen(int fd, int backlog) {
  using ListenFn = int (*)(int, int);
  static ListenFn real = reinterpret_cast<ListenFn>(dlsym(RTLD_NEXT, "listen"));
  if (real == nullptr) return -1;
  return real(fd, backlog < SOMAXCONN ? SOMAXCONN : backlog);
}
