/* A mailbox: how other threads ask something of an event-loop thread.
 *
 * Each event base is touched by its own thread only.  What another thread
 * wants done there (start a session, hand it the slot it waited for, close
 * sessions, apply a reload...) is a struct mail posted to that thread's
 * mailbox: a list under a mutex and an eventfd that wakes the loop, which
 * then delivers each mail by calling its function, in posting order.  The
 * thread itself posts to its own mailbox the same way, so that a hand-off
 * never re-enters the code that made it.
 *
 * A mail is usually embedded in what it is about (a session, a reload
 * job).  Posting a mail that is already queued only adds its ops bits:
 * one delivery sees them all.  Whoever frees a mail's container must
 * first make sure it is not queued (mailbox_cancel, on the owner's
 * thread) and that no other thread will post it any more. */
#ifndef LB_MAILBOX_H
#define LB_MAILBOX_H

#include <stdbool.h>
#include <sys/queue.h>

#include <event2/event.h>

struct mail;
/* ops: the bits posted since the last delivery; arg: the first non-zero
 * arg posted with them. */
typedef void (*mail_fn)(struct mail *m, unsigned ops, int arg);

struct mail {
	TAILQ_ENTRY(mail) link; /* the mailbox's, under its lock */
	mail_fn fn;
	unsigned ops;
	int arg;
	bool queued;
};

struct mailbox;

void mail_init(struct mail *m, mail_fn fn);

/* On the owner's thread, before anyone posts.  NULL after logging why. */
struct mailbox *mailbox_new(struct event_base *base, const char *name);
/* On the owner's thread, its loop stopped and nobody posting any more:
 * what is still queued is delivered first. */
void mailbox_free(struct mailbox *mb);

/* Any thread. */
void mailbox_post(struct mailbox *mb, struct mail *m, unsigned ops, int arg);
/* Owner's thread: take m out of the queue if it is there (before freeing
 * its container).  Returns true when it was queued. */
bool mailbox_cancel(struct mailbox *mb, struct mail *m);
/* Owner's thread: deliver what is queued now, a batch at most (the loop
 * does this; the rest follows in its next pass). */
void mailbox_drain(struct mailbox *mb);
/* Owner's thread, its loop stopped: deliver until nothing is left. */
void mailbox_drain_all(struct mailbox *mb);

#endif
