//! The order book: MP's order lifecycle, top-ups, traffic that grows while an
//! order is in use, and the usage thresholds that trigger alarm callbacks.
//!
//! Every function takes `now` so the rules can be tested without waiting.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeDelta, Utc};

use super::catalogue::Product;
use super::errors::BusinessError;
use super::ids::{self, Iccid};
use super::wire::MP_OFFSET;

/// Usage percentages at which MP calls the alarm callback.
pub(crate) const ALARM_THRESHOLDS: [u32; 3] = [53, 84, 100];

const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

/// MP's order status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    NotEnabled,
    InUse,
    Suspended,
    Finished,
}

impl Status {
    /// The code MP sends in `status`.
    pub fn code(self) -> &'static str {
        match self {
            Status::NotEnabled => "0",
            Status::InUse => "1",
            Status::Suspended => "2",
            Status::Finished => "3",
        }
    }
}

/// A `switchButton` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Switch {
    On,
    Suspend,
    Restart,
    Off,
}

impl Switch {
    /// MP's spelling only: `ON`, `SUSPEND`, `RESTART`, `OFF`.
    pub fn parse(raw: &str) -> Result<Switch, BusinessError> {
        match raw {
            "ON" => Ok(Switch::On),
            "SUSPEND" => Ok(Switch::Suspend),
            "RESTART" => Ok(Switch::Restart),
            "OFF" => Ok(Switch::Off),
            _ => Err(BusinessError::UnknownSwitch),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Switch::On => "ON",
            Switch::Suspend => "SUSPEND",
            Switch::Restart => "RESTART",
            Switch::Off => "OFF",
        }
    }
}

/// What an activationCode request asks for, already checked against the
/// catalogue.
pub(crate) struct NewOrder {
    pub product: &'static Product,
    pub quantity: u32,
    pub iccid: Option<Iccid>,
    pub activate: bool,
}

/// An alarm that is due: an order's usage crossed a threshold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Alarm {
    pub eid: String,
    pub package_code: String,
    pub order_code: String,
    pub threshold: u32,
}

/// One order and its simulated usage.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub order_code: String,
    pub iccid: Iccid,
    pub eid: String,
    pub package_code: String,
    pub qr_code: String,
    pub status: Status,
    pub actual_start: Option<DateTime<Utc>>,
    /// Cycles ordered per activation (and added by each top-up).
    pub quantity: u32,
    /// Cycles bought so far, top-ups included.
    pub cycles: u32,
    volume_mb_per_cycle: f64,
    period_days_per_cycle: u32,
    used_mb: f64,
    /// Usage is accounted up to this instant.
    accrued_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// MB used per UTC+8 calendar day.
    daily_mb: BTreeMap<NaiveDate, f64>,
    /// Which of [`ALARM_THRESHOLDS`] have been reported.
    alarmed: [bool; 3],
}

impl Order {
    /// Total MB bought (MP's `packageFlow`).
    pub fn total_mb(&self) -> f64 {
        self.volume_mb_per_cycle * f64::from(self.cycles)
    }

    /// MB used so far (MP's `packageUsedFlow`), as of the last settlement.
    pub fn used_mb(&self) -> f64 {
        self.used_mb
    }

    /// The last second of the last day bought, in UTC+8, the way MP's
    /// example ends a 7-day order started on 03-07 at `03-13 23:59:59`.
    pub fn planned_end(&self) -> Option<DateTime<Utc>> {
        let start = self.actual_start?.with_timezone(&MP_OFFSET).date_naive();
        let days = u64::from(self.period_days_per_cycle) * u64::from(self.cycles);
        let first_day_after = start.checked_add_days(Days::new(days))?;
        let midnight = first_day_after
            .and_time(NaiveTime::MIN)
            .and_local_timezone(MP_OFFSET)
            .single()?;
        Some(midnight.with_timezone(&Utc) - TimeDelta::seconds(1))
    }

    /// Bytes used per UTC+8 day, from the start day to today (or the day
    /// the order finished), days without use included.
    pub fn daily_bytes(&self, now: DateTime<Utc>) -> Vec<(NaiveDate, u64)> {
        let Some(start) = self.actual_start else {
            return Vec::new();
        };
        let first = local_date(start);
        let last = local_date(self.finished_at.unwrap_or(now).max(start));
        first
            .iter_days()
            .take_while(|day| *day <= last)
            .map(|day| {
                let mb = self.daily_mb.get(&day).copied().unwrap_or(0.0);
                (day, (mb * BYTES_PER_MB).round() as u64)
            })
            .collect()
    }

    fn new(spec: NewOrder, iccid: Iccid, package_code: String, now: DateTime<Utc>) -> Order {
        let mut order = Order {
            order_code: ids::order_code(),
            iccid,
            eid: ids::eid(),
            package_code,
            qr_code: ids::qr_code(),
            status: Status::NotEnabled,
            actual_start: None,
            quantity: spec.quantity,
            cycles: spec.quantity,
            volume_mb_per_cycle: spec.product.volume_mb,
            period_days_per_cycle: spec.product.period_days,
            used_mb: 0.0,
            accrued_at: now,
            finished_at: None,
            daily_mb: BTreeMap::new(),
            alarmed: [false; 3],
        };
        if spec.activate {
            order.start(now);
        }
        order
    }

    fn start(&mut self, now: DateTime<Utc>) {
        self.status = Status::InUse;
        self.actual_start = Some(now);
        self.accrued_at = now;
    }

    /// Brings usage up to `now`: accrues traffic while in use (capped at
    /// the total, split by UTC+8 day), and finishes an order past its end.
    fn settle(&mut self, now: DateTime<Utc>, mb_per_sec: f64) {
        let end = self.planned_end();
        let until = match end {
            Some(end) if end < now => end,
            _ => now,
        };
        if self.status == Status::InUse {
            self.accrue(until, mb_per_sec);
        }
        self.accrued_at = self.accrued_at.max(now);
        let running = matches!(self.status, Status::InUse | Status::Suspended);
        if let Some(end) = end
            && running
            && end < now
        {
            self.finish(end);
        }
    }

    fn accrue(&mut self, until: DateTime<Utc>, mb_per_sec: f64) {
        let mut from = self.accrued_at;
        while from < until && self.used_mb < self.total_mb() {
            let day = local_date(from);
            let to = next_local_midnight(day).map_or(until, |midnight| midnight.min(until));
            if to <= from {
                break;
            }
            let seconds = (to - from).num_milliseconds() as f64 / 1000.0;
            let added = (mb_per_sec * seconds).min(self.total_mb() - self.used_mb);
            *self.daily_mb.entry(day).or_default() += added;
            self.used_mb += added;
            from = to;
        }
    }

    fn finish(&mut self, at: DateTime<Utc>) {
        self.status = Status::Finished;
        self.finished_at = Some(at);
    }

    fn switch(&mut self, button: Switch, now: DateTime<Utc>) -> Result<(), BusinessError> {
        match (button, self.status) {
            (Switch::On, Status::NotEnabled) => self.start(now),
            (Switch::Suspend, Status::InUse) => self.status = Status::Suspended,
            (Switch::Restart, Status::Suspended) => self.status = Status::InUse,
            (Switch::Off, status) if status != Status::Finished => self.finish(now),
            (button, status) => {
                return Err(BusinessError::SwitchNotAllowed {
                    status: status.code(),
                    button: button.name(),
                });
            }
        }
        Ok(())
    }

    fn top_up(&mut self) -> Result<u32, BusinessError> {
        if self.status == Status::Finished {
            return Err(BusinessError::TopUpFinished);
        }
        self.cycles += self.quantity;
        // A lower percentage re-arms the thresholds it is now below.
        for (index, threshold) in ALARM_THRESHOLDS.into_iter().enumerate() {
            if !self.used_mb_reaches(threshold) {
                self.alarmed[index] = false;
            }
        }
        Ok(self.quantity)
    }

    fn used_mb_reaches(&self, percent: u32) -> bool {
        let total = self.total_mb();
        total > 0.0 && self.used_mb * 100.0 >= f64::from(percent) * total
    }

    fn due_alarms(&mut self) -> Vec<Alarm> {
        let mut due = Vec::new();
        for (index, threshold) in ALARM_THRESHOLDS.into_iter().enumerate() {
            if !self.alarmed[index] && self.used_mb_reaches(threshold) {
                self.alarmed[index] = true;
                due.push(Alarm {
                    eid: self.eid.clone(),
                    package_code: self.package_code.clone(),
                    order_code: self.order_code.clone(),
                    threshold,
                });
            }
        }
        due
    }
}

/// All orders, and the ICCIDs they hold.
#[derive(Debug)]
pub(crate) struct OrderBook {
    orders: HashMap<String, Order>,
    iccids: HashSet<Iccid>,
    mb_per_sec: f64,
    package_sequence: u64,
}

impl OrderBook {
    pub fn new(mb_per_sec: f64) -> OrderBook {
        OrderBook {
            orders: HashMap::new(),
            iccids: HashSet::new(),
            mb_per_sec,
            package_sequence: 0,
        }
    }

    /// Creates an order (activationCode) and returns a copy of it.
    pub fn create(&mut self, spec: NewOrder, now: DateTime<Utc>) -> Result<Order, BusinessError> {
        let iccid = match spec.iccid.clone() {
            Some(iccid) if self.iccids.contains(&iccid) => {
                return Err(BusinessError::IccidInUse);
            }
            Some(iccid) => iccid,
            None => self.fresh_iccid(),
        };
        self.package_sequence += 1;
        let package_code = ids::package_code(now, self.package_sequence);
        let mut order = Order::new(spec, iccid, package_code, now);
        while self.orders.contains_key(&order.order_code) {
            order.order_code = ids::order_code();
        }
        self.iccids.insert(order.iccid.clone());
        self.orders.insert(order.order_code.clone(), order.clone());
        Ok(order)
    }

    /// The order as of `now`, if it exists.
    pub fn get(&mut self, order_code: &str, now: DateTime<Utc>) -> Option<Order> {
        let mb_per_sec = self.mb_per_sec;
        let order = self.orders.get_mut(order_code)?;
        order.settle(now, mb_per_sec);
        Some(order.clone())
    }

    /// Applies a switchOrder button.
    pub fn switch(
        &mut self,
        order_code: &str,
        button: Switch,
        now: DateTime<Utc>,
    ) -> Result<(), BusinessError> {
        self.settled(order_code, now)?.switch(button, now)
    }

    /// Tops an order up with its own quantity; returns the cycles added.
    pub fn top_up(&mut self, order_code: &str, now: DateTime<Utc>) -> Result<u32, BusinessError> {
        self.settled(order_code, now)?.top_up()
    }

    /// Settles every order and returns the alarms that became due, each once.
    pub fn due_alarms(&mut self, now: DateTime<Utc>) -> Vec<Alarm> {
        let mb_per_sec = self.mb_per_sec;
        self.orders
            .values_mut()
            .flat_map(|order| {
                order.settle(now, mb_per_sec);
                order.due_alarms()
            })
            .collect()
    }

    fn settled(
        &mut self,
        order_code: &str,
        now: DateTime<Utc>,
    ) -> Result<&mut Order, BusinessError> {
        let mb_per_sec = self.mb_per_sec;
        let order = self
            .orders
            .get_mut(order_code)
            .ok_or(BusinessError::OrderNotFound)?;
        order.settle(now, mb_per_sec);
        Ok(order)
    }

    fn fresh_iccid(&self) -> Iccid {
        loop {
            let iccid = Iccid::generate();
            if !self.iccids.contains(&iccid) {
                return iccid;
            }
        }
    }
}

fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&MP_OFFSET).date_naive()
}

fn next_local_midnight(day: NaiveDate) -> Option<DateTime<Utc>> {
    let next = day.succ_opt()?.and_time(NaiveTime::MIN);
    Some(
        next.and_local_timezone(MP_OFFSET)
            .single()?
            .with_timezone(&Utc),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::catalogue::PRODUCTS;
    use chrono::TimeZone;

    const RATE: f64 = 10.0;

    fn t0() -> DateTime<Utc> {
        // 2025-03-07 17:11:21 in UTC+8, MP's example start.
        Utc.with_ymd_and_hms(2025, 3, 7, 9, 11, 21).unwrap()
    }

    fn secs(n: i64) -> TimeDelta {
        TimeDelta::seconds(n)
    }

    fn create(book: &mut OrderBook, product: usize, activate: bool) -> Order {
        let product = &PRODUCTS[product];
        let spec = NewOrder {
            product,
            quantity: product.quantities[0],
            iccid: None,
            activate,
        };
        book.create(spec, t0()).unwrap()
    }

    #[test]
    fn an_activated_order_ends_like_mp_example() {
        let mut book = OrderBook::new(RATE);
        // Product 6 is 7 days a cycle, ordered 3 cycles by default.
        let order = create(&mut book, 1, true);
        assert_eq!(order.status, Status::InUse);
        let end = order.planned_end().unwrap();
        assert_eq!(crate::sandbox::wire::mp_time(end), "2025-03-27 23:59:59");
    }

    #[test]
    fn traffic_grows_only_while_in_use_and_stops_at_the_total() {
        let mut book = OrderBook::new(RATE);
        let code = create(&mut book, 0, false).order_code;
        assert_eq!(book.get(&code, t0() + secs(50)).unwrap().used_mb(), 0.0);

        book.switch(&code, Switch::On, t0() + secs(50)).unwrap();
        assert_eq!(book.get(&code, t0() + secs(60)).unwrap().used_mb(), 100.0);

        book.switch(&code, Switch::Suspend, t0() + secs(60))
            .unwrap();
        assert_eq!(book.get(&code, t0() + secs(500)).unwrap().used_mb(), 100.0);

        book.switch(&code, Switch::Restart, t0() + secs(500))
            .unwrap();
        assert_eq!(book.get(&code, t0() + secs(510)).unwrap().used_mb(), 200.0);
        assert_eq!(
            book.get(&code, t0() + secs(9999)).unwrap().used_mb(),
            1024.0
        );
    }

    #[test]
    fn daily_traffic_splits_usage_at_utc8_midnight() {
        let mut book = OrderBook::new(0.01);
        let code = create(&mut book, 0, true).order_code;
        let a_day_later = t0() + TimeDelta::hours(24);
        let order = book.get(&code, a_day_later).unwrap();
        let days = order.daily_bytes(a_day_later);
        assert_eq!(days.len(), 2);
        let total: u64 = days.iter().map(|(_, bytes)| bytes).sum();
        let expected = order.used_mb() * BYTES_PER_MB;
        assert!(
            (total as f64 - expected).abs() < 2.0,
            "{total} vs {expected}"
        );
        // 17:11:21 to midnight is 6h48m39s of the 24h.
        assert_eq!(days[0].1, (24519.0 * 0.01 * BYTES_PER_MB).round() as u64);
    }

    #[test]
    fn switch_follows_mp_transitions() {
        let mut book = OrderBook::new(RATE);
        let code = create(&mut book, 0, false).order_code;
        let now = t0();
        assert!(book.switch(&code, Switch::Suspend, now).is_err());
        assert!(book.switch(&code, Switch::Restart, now).is_err());
        book.switch(&code, Switch::On, now).unwrap();
        assert!(book.switch(&code, Switch::On, now).is_err());
        book.switch(&code, Switch::Off, now).unwrap();
        assert_eq!(
            book.switch(&code, Switch::Off, now),
            Err(BusinessError::SwitchNotAllowed {
                status: "3",
                button: "OFF"
            })
        );
        assert_eq!(
            book.switch("ORDER_0", Switch::On, now),
            Err(BusinessError::OrderNotFound)
        );
    }

    #[test]
    fn top_up_adds_period_and_volume_but_not_to_finished_orders() {
        let mut book = OrderBook::new(RATE);
        let order = create(&mut book, 1, true);
        let before = order.planned_end().unwrap();
        assert_eq!(book.top_up(&order.order_code, t0()), Ok(3));
        let after = book.get(&order.order_code, t0()).unwrap();
        assert_eq!(after.total_mb(), 6.0 * 1024.0);
        assert_eq!(after.planned_end().unwrap() - before, TimeDelta::days(21));

        book.switch(&order.order_code, Switch::Off, t0()).unwrap();
        assert_eq!(
            book.top_up(&order.order_code, t0()),
            Err(BusinessError::TopUpFinished)
        );
    }

    #[test]
    fn each_threshold_alarms_once_and_a_top_up_rearms_it() {
        let mut book = OrderBook::new(RATE);
        let code = create(&mut book, 0, true).order_code;
        let thresholds = |alarms: Vec<Alarm>| -> Vec<u32> {
            alarms.into_iter().map(|alarm| alarm.threshold).collect()
        };
        assert!(book.due_alarms(t0() + secs(50)).is_empty());
        assert_eq!(thresholds(book.due_alarms(t0() + secs(55))), [53]);
        assert!(book.due_alarms(t0() + secs(56)).is_empty());
        assert_eq!(thresholds(book.due_alarms(t0() + secs(200))), [84, 100]);

        // 1024 of 2048 MB is 50%: every threshold is armed again.
        book.top_up(&code, t0() + secs(200)).unwrap();
        assert_eq!(thresholds(book.due_alarms(t0() + secs(210))), [53]);
    }

    #[test]
    fn an_iccid_can_be_ordered_only_once() {
        let mut book = OrderBook::new(RATE);
        let spec = || NewOrder {
            product: &PRODUCTS[0],
            quantity: 1,
            iccid: Some(Iccid::parse("8943108169999589689").unwrap()),
            activate: false,
        };
        assert!(book.create(spec(), t0()).is_ok());
        assert_eq!(
            book.create(spec(), t0()).unwrap_err(),
            BusinessError::IccidInUse
        );
    }
}
