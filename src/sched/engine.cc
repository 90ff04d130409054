#include "sched/engine.h"
