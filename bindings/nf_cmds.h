/* nf_cmds.h - the author's subcommands of `neffos` (main.c dispatches on
 * argv[1]). Each takes argv from its own name on and returns the exit code. */
#ifndef NF_CMDS_H
#define NF_CMDS_H

/* neffos test APP [SPECS...] [busted options]: busted specs against APP
 * (cmd_test.c). Exit 0 when every spec passed, 1 otherwise, 2 on usage. */
int nf_cmd_test(int argc, char **argv, const char *scripts_dir);

/* neffos new DIR: writes a starter app (cmd_new.c, templates in
 * scripts/neffos/new.lua). Exit 0, 1 when DIR exists and is not empty. */
int nf_cmd_new(int argc, char **argv, const char *scripts_dir);

#endif
