#include "sched/node_codec.h"
