//! The async wake-ups (`Reactor`), on every platform: included as `reactor::tests` by each
//! OS's reactor module.

use super::*;
use crate::sys::Waker;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// A task waker that counts its wake-ups.
struct Count(AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn eventually(count: &Count, n: usize) {
    let start = Instant::now();
    while count.0.load(Ordering::SeqCst) < n {
        assert!(start.elapsed() < Duration::from_secs(5), "no wake-up");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_member_or_the_deadline_wakes_the_task_once_per_arming() {
    let reactor = reactor().unwrap();
    let (a, b) = (Waker::new().unwrap(), Waker::new().unwrap());
    let set = WaitSet::new(&[(a.fd(), Interest::Readable), (b.fd(), Interest::Readable)]).unwrap();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = task::Waker::from(count.clone());
    let token = token();
    reactor.arm(&set, token, &waker).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    b.wake();
    eventually(&count, 1);
    // Signalled already: arming again wakes at once.
    reactor.arm(&set, token, &waker).unwrap();
    eventually(&count, 2);
    b.drain();
    // The deadline.
    let start = Instant::now();
    set.wake_by(start + Duration::from_millis(30)).unwrap();
    reactor.arm(&set, token, &waker).unwrap();
    eventually(&count, 3);
    assert!(
        start.elapsed() >= Duration::from_millis(29),
        "{:?}",
        start.elapsed()
    );
    set.take_expiry(Instant::now());
    // Disarmed: nothing wakes it.
    reactor.arm(&set, token, &waker).unwrap();
    reactor.disarm(token);
    a.wake();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(count.0.load(Ordering::SeqCst), 3);
}

/// A ring that comes while the task arms again (each poll of a sleeping call arms) wakes it. On
/// Windows a bell resets itself when a wait takes its ring, and arming used to cancel the waits
/// of the arming before: a ring a cancelled wait had taken was lost (5 in 3,000 under Wine),
/// and the call slept until its deadline.
#[test]
fn a_ring_while_the_task_arms_again_is_never_lost() {
    let reactor = reactor().unwrap();
    for _ in 0..2000 {
        let (bell, theirs) = crate::sys::Bell::pair().unwrap();
        let theirs = crate::sys::Bell::from_fd(theirs);
        let set = WaitSet::new(&[(bell.fd(), Interest::Readable)]).unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = task::Waker::from(count.clone());
        let token = token();
        reactor.arm(&set, token, &waker).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| theirs.ring());
            reactor.arm(&set, token, &waker).unwrap();
        });
        eventually(&count, 1);
        reactor.disarm(token);
    }
}

/// A nearer wake-up time replaces a later one (a call's retry time, before its deadline).
#[test]
fn a_nearer_wake_up_time_replaces_a_later_one() {
    let reactor = reactor().unwrap();
    let a = Waker::new().unwrap();
    let set = WaitSet::new(&[(a.fd(), Interest::Readable)]).unwrap();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = task::Waker::from(count.clone());
    let token = token();
    let start = Instant::now();
    set.wake_by(start + Duration::from_secs(3)).unwrap();
    set.wake_by(start + Duration::from_millis(30)).unwrap();
    reactor.arm(&set, token, &waker).unwrap();
    eventually(&count, 1);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "woken after {took:?}");
    set.take_expiry(Instant::now());
    reactor.disarm(token);
}

#[test]
fn timers_fire_in_order_and_cancelled_ones_do_not() {
    let reactor = reactor().unwrap();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = task::Waker::from(count.clone());
    let now = Instant::now();
    let cancelled = reactor.timer(now + Duration::from_millis(10), &waker);
    reactor.timer(now + Duration::from_millis(40), &waker);
    reactor.cancel(now + Duration::from_millis(10), cancelled);
    eventually(&count, 1);
    assert!(now.elapsed() >= Duration::from_millis(39));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
}

#[test]
fn an_earlier_timer_wakes_a_reactor_that_sleeps_until_a_later_one() {
    let reactor = reactor().unwrap();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = task::Waker::from(count.clone());
    let now = Instant::now();
    let late = reactor.timer(now + Duration::from_secs(2), &waker);
    // The reactor's thread sleeps until the late timer by now.
    std::thread::sleep(Duration::from_millis(20));
    reactor.timer(now + Duration::from_millis(40), &waker);
    eventually(&count, 1);
    let took = now.elapsed();
    assert!(
        took >= Duration::from_millis(39) && took < Duration::from_millis(1000),
        "{took:?}"
    );
    reactor.cancel(now + Duration::from_secs(2), late);
}
