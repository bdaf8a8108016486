/* route — declarations shared by the files of the module only. */
#ifndef GATE_ROUTE_INT_H
#define GATE_ROUTE_INT_H

#include "route/route.h"

/* GET HEAD POST PUT PATCH DELETE OPTIONS, then "any other method". */
#define ROUTE_N_METHODS 8

int route__method_index(const char *m, size_t len);
size_t route__split_template(const char *tpl, struct route_seg **out);

#endif
