/* Mailboxes (see mailbox.h): a mutex-protected list and an eventfd. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "mailbox.h"

/* Mails delivered per wake-up before the loop looks at its sockets again
 * (the rest follow in the next pass). */
#define MAILBOX_BATCH 256

TAILQ_HEAD(mail_list, mail);

struct mailbox {
	pthread_mutex_t lock;
	struct mail_list list;
	int efd;
	struct event *ev;
	struct event_base *base;
	const char *name;
};

void
mail_init(struct mail *m, mail_fn fn)
{
	memset(m, 0, sizeof(*m));
	m->fn = fn;
}

static void
mb_lock(struct mailbox *mb)
{
	int e = pthread_mutex_lock(&mb->lock);

	if (e != 0) {
		errno = e;
		fatal("mailbox %s: lock", mb->name);
	}
}

static void
mb_unlock(struct mailbox *mb)
{
	int e = pthread_mutex_unlock(&mb->lock);

	if (e != 0) {
		errno = e;
		fatal("mailbox %s: unlock", mb->name);
	}
}

static void
wake(struct mailbox *mb)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is full, the loop is awake anyway. */
	if (write(mb->efd, &one, sizeof(one)) < 0 && errno != EAGAIN &&
	    errno != EINTR)
		log_warn("mailbox %s: eventfd write", mb->name);
}

static void
mailbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mailbox *mb = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN && errno != EINTR)
		log_warn("mailbox %s: eventfd read", mb->name);
	mailbox_drain(mb);
}

struct mailbox *
mailbox_new(struct event_base *base, const char *name)
{
	struct mailbox *mb = calloc(1, sizeof(*mb));

	if (mb == NULL) {
		log_warn("mailbox %s", name);
		return NULL;
	}
	mb->name = name;
	mb->base = base;
	TAILQ_INIT(&mb->list);
	if (pthread_mutex_init(&mb->lock, NULL) != 0) {
		log_warnx("mailbox %s: cannot create its lock", name);
		free(mb);
		return NULL;
	}
	if ((mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		log_warn("mailbox %s: eventfd", name);
		pthread_mutex_destroy(&mb->lock);
		free(mb);
		return NULL;
	}
	mb->ev = event_new(base, mb->efd, EV_READ | EV_PERSIST, mailbox_cb, mb);
	if (mb->ev == NULL || event_add(mb->ev, NULL) < 0) {
		log_warnx("mailbox %s: cannot watch its eventfd", name);
		if (mb->ev != NULL)
			event_free(mb->ev);
		close(mb->efd);
		pthread_mutex_destroy(&mb->lock);
		free(mb);
		return NULL;
	}
	return mb;
}

static bool
empty(struct mailbox *mb)
{
	bool e;

	mb_lock(mb);
	e = TAILQ_EMPTY(&mb->list);
	mb_unlock(mb);
	return e;
}

void
mailbox_free(struct mailbox *mb)
{
	if (mb == NULL)
		return;
	mailbox_drain_all(mb);
	event_free(mb->ev);
	close(mb->efd);
	pthread_mutex_destroy(&mb->lock);
	free(mb);
}

void
mailbox_post(struct mailbox *mb, struct mail *m, unsigned ops, int arg)
{
	bool was_empty = false;

	mb_lock(mb);
	m->ops |= ops;
	if (m->arg == 0)
		m->arg = arg;
	if (!m->queued) {
		was_empty = TAILQ_EMPTY(&mb->list);
		TAILQ_INSERT_TAIL(&mb->list, m, link);
		m->queued = true;
	}
	mb_unlock(mb);
	if (was_empty)
		wake(mb);
}

bool
mailbox_cancel(struct mailbox *mb, struct mail *m)
{
	bool was;

	mb_lock(mb);
	was = m->queued;
	if (was) {
		TAILQ_REMOVE(&mb->list, m, link);
		m->queued = false;
		m->ops = 0;
		m->arg = 0;
	}
	mb_unlock(mb);
	return was;
}

void
mailbox_drain(struct mailbox *mb)
{
	for (unsigned k = 0; k < MAILBOX_BATCH; k++) {
		struct mail *m;
		unsigned ops;
		int arg;

		mb_lock(mb);
		if ((m = TAILQ_FIRST(&mb->list)) == NULL) {
			mb_unlock(mb);
			return;
		}
		TAILQ_REMOVE(&mb->list, m, link);
		ops = m->ops;
		arg = m->arg;
		m->ops = 0;
		m->arg = 0;
		m->queued = false;
		mb_unlock(mb);
		/* m may be freed by its function. */
		m->fn(m, ops, arg);
	}
	/* More than a batch: the rest in the next pass of the loop. */
	event_active(mb->ev, EV_READ, 0);
}

void
mailbox_drain_all(struct mailbox *mb)
{
	/* Bounded: deliveries that post again and again cannot hold the end
	 * of the process forever. */
	for (unsigned k = 0; k < 10000 && !empty(mb); k++)
		mailbox_drain(mb);
}
