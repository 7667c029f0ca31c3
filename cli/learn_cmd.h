/* `pickleproof policy ...`: learn, show, list. */
#ifndef PP_LEARN_CMD_H
#define PP_LEARN_CMD_H

/* argv[0] is "policy". Returns the exit status: 0 done, 1 learning refused (a dangerous global,
 * or a use no policy entry can allow), 2 usage or operational error (and malformed samples). */
int pp_cli_policy(int argc, char **argv);

#endif
