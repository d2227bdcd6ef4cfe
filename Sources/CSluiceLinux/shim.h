#ifndef SLUICE_LINUX_SHIM_H
#define SLUICE_LINUX_SHIM_H

// Glibc's Swift overlay leaves these Linux-only headers out. _GNU_SOURCE stays undefined on
// purpose: with it glibc declares bind/connect/accept through a transparent union Swift cannot call.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <fcntl.h>
#include <unistd.h>
#include <malloc.h>

// Declared here because glibc hides them behind _GNU_SOURCE.
// The layout of struct ucred, which SO_PEERCRED fills in.
struct sluice_ucred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
extern int pipe2(int pipefd[2], int flags);
// The mask is a cpu_set_t, itself behind _GNU_SOURCE; callers pass a byte buffer of its size.
extern int sched_getaffinity(int pid, size_t cpusetsize, void *mask);
// glibc's spinning mutex kind (PTHREAD_MUTEX_ADAPTIVE_NP), likewise behind _GNU_SOURCE. Its value is
// part of glibc's ABI.
static const int sluice_PTHREAD_MUTEX_ADAPTIVE_NP = 3;

#endif
