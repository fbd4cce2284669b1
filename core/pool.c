/* SPDX-License-Identifier: MIT */
/* placeholder, being written */
typedef int weft__placeholder_pool;
