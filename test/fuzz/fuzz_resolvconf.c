/* libFuzzer target: the resolv.conf parser never crashes or leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/resolvconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rsv_resolvconf *rc = NULL;
	size_t i;

	if (rsv_resolvconf_parse((const char *)data, size, &rc) != 0)
		return 0;
	for (i = 0; i < rc->nservers; i++)
		if (rc->servers[i].port != 53 ||
		    strlen(rc->servers[i].text) >= sizeof(rc->servers[i].text))
			abort();
	for (i = 0; i < rc->nsearch; i++)
		if (rc->search[i] == NULL)
			abort();
	rsv_resolvconf_free(rc);
	return 0;
}
