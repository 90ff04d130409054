// Does this host's CPU run a loop slower when the loop pauses often? Runs fixed chunks of
// arithmetic for `on` ms, then sleeps (or spins) `off` ms, for `secs` seconds, and prints the
// chunks per ms of running time. Pace mode (docs/compute-limiter.md, section 1b) pauses a
// host-bound loop in that rhythm; a CPU that clocks down in the pauses slows its stretches.
// Build and run: cc -O2 -o host_duty bench/gpu/host_duty.c && ./host_duty 20 20 0 2
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <stdint.h>
static uint64_t now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000ull+t.tv_nsec;}
volatile double sink;
static void chunk(){double x=1.0;for(int i=0;i<2000;i++)x=x*1.0000001+0.5/x;sink=x;}
int main(int argc,char**argv){
  int on_ms=atoi(argv[1]), off_ms=atoi(argv[2]), spin=atoi(argv[3]); double secs=atof(argv[4]);
  uint64_t t0=now(), end=t0+(uint64_t)(secs*1e9); uint64_t work=0, ontime=0;
  while(now()<end){
    uint64_t s=now(), e=s+on_ms*1000000ull;
    while(now()<e){chunk();work++;}
    ontime+=now()-s;
    if(off_ms){ if(spin){uint64_t u=now()+off_ms*1000000ull; while(now()<u);} else {struct timespec ts={0,off_ms*1000000L}; nanosleep(&ts,0);} }
  }
  printf("on=%d off=%d spin=%d chunks_per_ms_on=%.1f\n",on_ms,off_ms,spin,work/(ontime/1e6));
}
