/* The machine's floor for one UDP round trip: a blocking echo server with nothing else in it.
 * run-benchmarks.sh --light-load drives it with `loadgen --status-server` and reports its CPU per
 * round trip next to certradius's Status-Server figure; the difference is what certradius's own
 * request path adds, the rest is the kernel (and, on loopback, the delivery to the generator).
 *
 *   cc -O2 -o udp-echo testbed/loadgen/udp-echo.c && ./udp-echo 18198     (127.0.0.1 only)
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: udp-echo PORT\n");
    return 2;
  }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[1]));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("udp-echo");
    return 1;
  }
  char buf[4096];
  for (;;) {
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    if (n > 0)
      sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
  }
}
