! A Fortran program that prices options with the phasm surrogate exported from pricer.py, and runs
! the original binomial tree for every call the surrogate's gate does not trust.
!
!   build/pricer_f        20000 random options in the captured range
!
! Build: make -C examples/native (needs build/pricer_mod.f90 and build/pricer_capi.c from
! `phasm export --lang fortran`).
program pricer_demo
  use, intrinsic :: iso_c_binding, only: c_double, c_int
  use pricer_mod, only: pricer_n_in, pricer_n_out, pricer_predict
  implicit none
  integer, parameter :: n = 20000
  real(c_double), parameter :: low(5) = [80.0_c_double, 80.0_c_double, 0.0_c_double, 0.1_c_double, 0.25_c_double]
  real(c_double), parameter :: high(5) = [120.0_c_double, 120.0_c_double, 0.05_c_double, 0.5_c_double, 2.0_c_double]
  real(c_double) :: x(pricer_n_in, n), exact(n), answer(n), y(pricer_n_out), err, worst
  integer :: i, fallbacks, misses
  integer(8) :: t0, t1, t2, rate

  call random_seed()
  call random_number(x)
  do i = 1, n
    x(:, i) = low + (high - low) * x(:, i)
  end do

  call system_clock(t0, rate)
  do i = 1, n
    exact(i) = crr_call(x(:, i))
  end do
  call system_clock(t1)
  fallbacks = 0
  do i = 1, n
    if (pricer_predict(x(:, i), y) == 1_c_int) then
      answer(i) = y(1)
    else
      answer(i) = crr_call(x(:, i))       ! the gate says no: the original answers
      fallbacks = fallbacks + 1
    end if
  end do
  call system_clock(t2)

  misses = 0
  worst = 0.0_c_double
  do i = 1, n
    err = abs(answer(i) - exact(i))
    worst = max(worst, err)
    if (err > 0.05_c_double .and. err > 0.01_c_double * abs(exact(i))) misses = misses + 1
  end do
  write (*, '(a, i0, a)') 'Fortran: ', n, ' options priced'
  write (*, '(a, f8.2, a)') '  original tree (200 steps):   ', 1.0d6 * real(t1 - t0, c_double) / real(rate * n, c_double), &
    ' us per call'
  write (*, '(a, f7.2, a, f0.1, a)') '  surrogate + gate + fallback: ', &
    1.0d6 * real(t2 - t1, c_double) / real(rate * n, c_double), ' us per call (', &
    real(t1 - t0, c_double) / real(max(t2 - t1, 1_8), c_double), 'x faster)'
  write (*, '(a, i0, a, i0, a, f0.1, a)') '  answered by the model: ', n - fallbacks, ', by the original: ', fallbacks, &
    ' (fallback rate ', 100.0 * fallbacks / real(n), '%)'
  write (*, '(a, i0, a, i0, a, f6.4)') '  beyond tolerance: ', misses, ' of ', n - fallbacks, ' model answers; worst error ', worst

contains

  ! The original: a Cox-Ross-Rubinstein tree for a European call, x = (S, K, r, v, T).
  function crr_call(x) result(price)
    real(c_double), intent(in) :: x(5)
    real(c_double) :: price, dt, u, p, disc, a, b, v(0:200)
    integer :: i, j
    dt = x(5) / 200.0_c_double
    u = exp(x(4) * sqrt(dt))
    p = (exp(x(3) * dt) - 1.0_c_double / u) / (u - 1.0_c_double / u)
    disc = exp(-x(3) * dt)
    a = disc * p
    b = disc * (1.0_c_double - p)
    do j = 0, 200
      v(j) = max(x(1) * u**(2 * j - 200) - x(2), 0.0_c_double)
    end do
    do i = 200, 1, -1
      do j = 0, i - 1
        v(j) = a * v(j + 1) + b * v(j)
      end do
    end do
    price = v(0)
  end function crr_call

end program pricer_demo
