#include "sched/annotation.h"
